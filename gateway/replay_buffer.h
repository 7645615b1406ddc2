#pragma once
// ReplayBuffer: the last data frames a session was sent, kept so that a
// client that lost its connection can resume without losing any.
//
// Frames are copied once, back to back, into a chain of pooled blocks, in
// their wire form (the 4-byte big-endian length, then the payload):
//
//   head block                          tail block
//   +-----+-----------+-----+------+    +-----+--------+------------+
//   | len | payload   | len | pay. | -> | len | payload| (free)     |
//   +-----+-----------+-----+------+    +-----+--------+------------+
//   ^ head_offset_ (oldest kept frame)                  ^ tail->chain_used
//
// Being the very bytes of the wire, a run of frames read together is kept
// with one memcpy (append_run) and echoed from the copy as one piece.
//
// Small frames share small blocks (dense: a 64-byte frame costs 68 bytes);
// a frame too big for a small block starts a block of the large pool (whose
// free space later frames then fill, as in any block). The echo of a frame is written from this
// very copy (the caller gets a BlockRef share), so replay costs one memcpy per frame and no second
// copy. Appending and dropping are O(1) and allocate nothing once the pools are warm; a block
// returns to its pool when the chain and every queued echo pointing into it have let go.
//
// Frames kept are always consecutive: first_seq() .. first_seq()+count()-1.
//
// Thread contract: the owning reactor thread only.

#include <cstdint>
#include <span>
#include <string_view>

#include "gateway/buffer_pool.h"
#include "gateway/frame_parser.h"

namespace flux {

class ReplayBuffer {
 public:
  struct Pools {
    BufferPool& small;
    BufferPool& large;
  };
  // A stored frame's payload, and a reference that keeps its bytes alive.
  struct Stored {
    BlockRef owner;
    std::string_view payload;
  };

  explicit ReplayBuffer(Pools pools) : pools_(pools) {}
  ReplayBuffer(const ReplayBuffer&) = delete;
  ReplayBuffer& operator=(const ReplayBuffer&) = delete;
  ~ReplayBuffer() { clear(); }

  // Copies payload in as frame `seq` (the next after the last one kept).
  Stored append(uint64_t seq, std::string_view payload);
  // Copies `count` whole wire frames (headers and payloads, back to back) in
  // as frames first_seq.. in one piece; Stored views all of them. They must
  // fit in room_for_run(size of the first).
  Stored append_run(uint64_t first_seq, std::span<const std::byte> frames, uint64_t count);
  // How many bytes of frames can go in one piece, if the first takes
  // `first_frame` bytes: the tail block's free space, or a fresh small
  // block's; 0 if that frame needs a large block.
  size_t room_for_run(size_t first_frame) const noexcept;
  // Forgets the oldest frame; false if there was none.
  bool drop_oldest() noexcept;
  // Starts loading the headers of the oldest `bytes` of frames into the
  // cache: the frames the next append will push out, whose lengths the trim
  // reads. Written long ago, they are rarely cached, and a trim that waits
  // for each was the gateway's costliest line (docs/benchmarks.md).
  void prefetch_oldest(size_t bytes) const noexcept;
  void clear() noexcept;

  uint64_t first_seq() const noexcept { return first_seq_; }
  uint64_t count() const noexcept { return count_; }
  // Header + payload bytes of the frames kept (what --replay-bytes bounds).
  uint64_t frame_bytes() const noexcept { return frame_bytes_; }
  // Bytes of the blocks in the chain (what --replay-memory bounds).
  uint64_t memory_bytes() const noexcept { return memory_bytes_; }

  // True if every frame after `last_seq` up to `seq` is still here.
  bool covers(uint64_t last_seq, uint64_t seq) const noexcept {
    return last_seq == seq || (count_ > 0 && first_seq_ <= last_seq + 1 && last_seq < seq);
  }

  // Calls visit(Stored) for every frame with a number above `after`, in order.
  template <typename Visit>
  void for_each_after(uint64_t after, Visit visit) const;

 private:
  static constexpr size_t kLengthSize = kFrameHeaderSize;
  Block* block_for(size_t need);
  std::byte* claim(uint64_t first_seq, size_t need, uint64_t count);
  static uint32_t length_at(const Block* block, size_t offset) noexcept;

  Pools pools_;
  Block* head_ = nullptr;  // each chained block holds one reference (released)
  Block* tail_ = nullptr;
  size_t head_offset_ = 0;
  uint64_t first_seq_ = 1;
  uint64_t count_ = 0;
  uint64_t frame_bytes_ = 0;
  uint64_t memory_bytes_ = 0;
};

template <typename Visit>
void ReplayBuffer::for_each_after(uint64_t after, Visit visit) const {
  uint64_t seq = first_seq_;
  size_t offset = head_offset_;
  for (const Block* block = head_; block && seq < first_seq_ + count_;) {
    if (offset >= block->chain_used) {
      block = block->chain_next;
      offset = 0;
      continue;
    }
    const uint32_t length = length_at(block, offset);
    if (seq > after) {
      const auto* bytes = reinterpret_cast<const char*>(block->bytes.get() + offset + kLengthSize);
      visit(Stored{BlockRef::share_of(const_cast<Block*>(block)), {bytes, length}});
    }
    offset += kLengthSize + length;
    ++seq;
  }
}

}  // namespace flux
