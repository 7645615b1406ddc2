#pragma once
// SentLog: the send times of one connection's frames in flight, oldest
// first. An echo must match the oldest entry (order), and its send time is
// the one written into the payload (byte-for-byte check, latency).
//
//   ring_: [ . . . h o o o o . . . ]   h = head_ (oldest), size_ entries
//
// Capacity is a power of two; it doubles when full (closed loop: sized to
// the window once, never grows; open loop: grows only while the server
// falls behind the schedule).
//
// Thread contract: owned by one worker thread.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace flux::bench {

class SentLog {
 public:
  explicit SentLog(size_t capacity = 1) { reserve(capacity); }

  void push(uint64_t send_ns) {
    if (size_ == ring_.size()) grow();
    ring_[(head_ + size_) & (ring_.size() - 1)] = send_ns;
    ++size_;
  }
  uint64_t front() const noexcept { return ring_[head_]; }
  // The i-th oldest entry (i < size()).
  uint64_t at(size_t i) const noexcept { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  void pop() noexcept {
    head_ = (head_ + 1) & (ring_.size() - 1);
    --size_;
  }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  void clear() noexcept { head_ = size_ = 0; }
  // Makes room for `capacity` entries without growing later.
  void reserve(size_t capacity);

 private:
  void grow();

  std::vector<uint64_t> ring_;
  size_t head_ = 0;
  size_t size_ = 0;
};

inline void SentLog::reserve(size_t capacity) {
  size_t cap = 1;
  while (cap < capacity) cap <<= 1;
  while (ring_.size() < cap) grow();
}

inline void SentLog::grow() {
  std::vector<uint64_t> bigger(ring_.empty() ? 1 : ring_.size() * 2);
  for (size_t i = 0; i < size_; ++i) bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
  ring_.swap(bigger);
  head_ = 0;
}

}  // namespace flux::bench
