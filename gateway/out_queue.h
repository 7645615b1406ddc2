#pragma once
// OutQueue: a connection's output, as a list of frames waiting for the kernel.
//
// A queued frame is two pieces, written with one scatter/gather call for
// many frames at once:
//
//   OutFrame: [ head: header + short control text, inline ][ tail: view into a pooled block ]
//                                                            (kept alive by a BlockRef)
//
// An echo is a 4-byte head plus a tail pointing at the bytes the client sent
// (no copy); "FLUX_PONG <token>" is a head "....FLUX_PONG " plus the token's
// bytes; "FLUX_READY <id> 0" fits in the head alone. The echoes of data
// frames read together are one entry with no head: its tail is their wire
// bytes, headers included (push_run), so a window of echoes is one iovec.
//
// Frame nodes come from a FrameNodePool (a free list that grows in chunks,
// each growth counted), so queueing allocates nothing in steady state. Like
// BufferPool, it gives chunks beyond recent need back in decay().
//
// Thread contract: reactor thread only.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "gateway/buffer_pool.h"
#include "metrics/reactor_metrics.h"

namespace flux {

struct OutFrame {
  // Room for "FLUX_READY <32 hex> <20-digit seq>" and its header.
  static constexpr size_t kHeadCapacity = 96;

  OutFrame* next = nullptr;
  BlockRef block;  // owner of the tail's bytes; empty if the tail is empty
  const std::byte* tail = nullptr;
  uint32_t tail_length = 0;
  uint8_t head_length = 0;
  uint32_t frames = 1;      // wire frames in this entry (a run of echoes: more than one)
  uint64_t read_at_ns = 0;  // data echoes: when the request was read (0 = control)
  std::array<std::byte, kHeadCapacity> head;

  size_t size() const noexcept { return head_length + size_t{tail_length}; }
};

class FrameNodePool {
 public:
  explicit FrameNodePool(PoolMetrics& metrics) : metrics_(metrics) {}
  FrameNodePool(const FrameNodePool&) = delete;
  FrameNodePool& operator=(const FrameNodePool&) = delete;

  OutFrame* acquire();
  void release(OutFrame* frame) noexcept;  // drops its block reference too

  // Frees whole chunks beyond the recent peak (DecaySchedule, in chunks), a
  // fraction per call; returns how many. Loop thread, periodic (the 100 ms
  // tick), never from acquire/release. A chunk can go only once all its
  // nodes are free: the pool waits for a moment with no node in use, lays
  // the free list out chunk by chunk (one pass over the nodes), and from
  // then on cuts chunks off the bottom of that stack, which LIFO use below
  // the cut leaves untouched.
  size_t decay(uint64_t now_ns);

  static constexpr size_t kChunk = 256;
  size_t chunks() const noexcept { return chunks_.size(); }
  size_t nodes_in_use() const noexcept { return in_use_; }

 private:
  void grow();
  void lay_out_in_order() noexcept;

  std::vector<std::unique_ptr<OutFrame[]>> chunks_;
  OutFrame* free_list_ = nullptr;
  size_t in_use_ = 0;
  // While ordered_, stack positions >= deepest_ (the most nodes in use since
  // the layout) still hold chunk (p / kChunk)'s node (p % kChunk).
  bool ordered_ = false;
  size_t deepest_ = 0;
  PoolMetrics& metrics_;
  DecaySchedule schedule_;
};

// What one flush wrote; echo latencies go straight into the histogram.
struct FlushTally {
  uint64_t bytes = 0;
  uint64_t frames = 0;
  LatencyHistogram* echo_latency = nullptr;
};

class OutQueue {
 public:
  enum class Flush : uint8_t {
    kDrained,  // everything written
    kBlocked,  // the socket buffer is full (EAGAIN): wait for EV_WRITE
    kFailed,   // the peer is gone (EPIPE, ECONNRESET, ...)
  };

  explicit OutQueue(FrameNodePool& nodes) : nodes_(nodes) {}
  OutQueue(const OutQueue&) = delete;
  OutQueue& operator=(const OutQueue&) = delete;
  ~OutQueue() { clear(); }

  // Queues one frame whose payload is `text` followed by `tail` (a view into
  // tail_owner's block, or empty). text must fit the head. read_at_ns marks
  // an echo, timed from then until the kernel takes its last byte.
  void push(std::string_view text, BlockRef tail_owner = {}, std::string_view tail = {},
            uint64_t read_at_ns = 0);
  // Queues the echoes of `count` data frames read at read_at_ns as one
  // entry: `frames` are whole wire frames (headers included) in
  // owner's block.
  void push_run(BlockRef owner, std::string_view frames, uint32_t count, uint64_t read_at_ns);

  // Writes as much as the socket takes (sendmsg, many frames per call),
  // adding what was written to the tally.
  Flush flush(int fd, FlushTally& tally);

  void clear() noexcept;
  bool empty() const noexcept { return head_ == nullptr; }
  uint64_t pending_bytes() const noexcept { return pending_bytes_; }

  // Echo after persist (session_store.h): frames can be held back, in
  // order, until the store has what they answer. Entries are numbered by
  // push order (a stored session's echoes are pushed one frame an entry);
  // those numbered hold_from() or later wait, unwritten (and still count in
  // pending_bytes, so back-pressure bounds them).
  static constexpr uint64_t kNoHold = UINT64_MAX;
  uint64_t pushed() const noexcept { return pushed_; }
  // Holds the next frame pushed and all after it (if nothing is held yet).
  void hold_from_next() noexcept {
    if (hold_from_ == kNoHold) hold_from_ = pushed_;
  }
  // Frames numbered below `index` may go; frames at or after it stay held.
  void release_to(uint64_t index) noexcept {
    if (hold_from_ == kNoHold) return;
    hold_from_ = index >= pushed_ ? kNoHold : std::max(hold_from_, index);
  }
  void release_all() noexcept { hold_from_ = kNoHold; }
  bool holding() const noexcept { return hold_from_ != kNoHold; }
  // Forgets every held frame (what they answer was never stored).
  void drop_held() noexcept;

 private:
  // Drops `written` bytes from the front; counts and times whole frames completed.
  void consume(size_t written, FlushTally& tally) noexcept;
  void link(OutFrame* frame) noexcept;

  FrameNodePool& nodes_;
  OutFrame* head_ = nullptr;
  OutFrame* tail_ = nullptr;
  size_t head_sent_ = 0;  // bytes of head_ already written
  uint64_t pending_bytes_ = 0;
  uint64_t pushed_ = 0;          // entries ever pushed: the next one's number
  uint64_t queued_entries_ = 0;  // so head_ is number pushed_ - queued_entries_
  uint64_t hold_from_ = kNoHold;
};

}  // namespace flux
