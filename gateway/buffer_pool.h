#pragma once
// BufferPool: fixed-size memory blocks, recycled instead of freed.
//
// Every block has the same capacity, large enough for one whole frame
// (header + max-frame payload), so a frame never straddles two blocks.
// Blocks are reference counted: a connection reads into a block, and the
// echo of each frame in it points at the same bytes (BlockRef::share), so a
// payload is never copied on its way back out. The block returns to the
// free list when the last reference goes.
//
//   pool ──acquire()──> BlockRef ──share()──> BlockRef (same bytes) ...
//                         ~BlockRef: --refs; at 0 the block is free again
//
// The pool grows on demand and gives memory back only gradually, so a steady
// state that fits the blocks it already has allocates and frees nothing. Each
// growth is counted in PoolMetrics::block_allocations_total (the buffer
// allocation rate), each block given back in block_releases_total. Several
// pools of one reactor (read blocks, replay blocks) may share one
// PoolMetrics: the byte gauges move by deltas, so they add up.
//
// Giving memory back (decay(), from the reactor's periodic tick, never from
// acquire or release): the pool keeps as many blocks as were in use at once
// over the last DecaySchedule::kWindowNs (its recent peak, at least the
// preallocated count) and releases the free blocks above that a fraction at
// a time, like jemalloc's decay of dirty pages:
//
//   blocks ^   peak in use ....+          window      +.... kept
//          |  ___________      |<-------------------->|  \__ released
//          | |  in use   |_____|______________________|_____\______
//          +---------------------------------------------------------> t
//                         flood ends            peak ages out, decay
//
// Large blocks (>= BlockBytes::kMapMinimum) are mmapped one by one, so
// releasing one unmaps it and RSS really drops; smaller ones come from the
// heap, and a release round that freed any ends with malloc_trim(0), which
// hands glibc's free pages back.
//
// Thread contract: reactor thread only (no locks, plain reference counts).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "metrics/reactor_metrics.h"

namespace flux {

class BufferPool;

// When a pool may give memory back: it tracks the most units (blocks, frame
// nodes) in use at once over a sliding window of whole slots, and paces the
// release of the units above that peak so they go a fraction per call.
// Loop thread only; note_in_use() is O(1) and allocation-free (hot path).
class DecaySchedule {
 public:
  static constexpr uint64_t kSlotNs = 1'000'000'000;  // window granularity: 1 s
  static constexpr size_t kSlots = 10;                // window: the last 10 s
  static constexpr uint64_t kWindowNs = kSlotNs * kSlots;
  // Time constant of the release: each call frees elapsed / kReleaseNs of the
  // excess (at least one unit), so 10 calls a second free 1/20 each.
  static constexpr uint64_t kReleaseNs = 2'000'000'000;

  void note_in_use(size_t in_use) noexcept {
    if (in_use > current_peak_) current_peak_ = in_use;
  }
  // Advances the window to now_ns (monotonic) and returns how many of
  // `total` units to release now: a paced share of those above
  // max(floor, recent peak), at most max_per_call. The first call only
  // starts the clock and releases nothing.
  size_t due(uint64_t now_ns, size_t total, size_t in_use, size_t floor,
             size_t max_per_call) noexcept;
  // The most units in use at once within the window (as of the last due()).
  size_t recent_peak() const noexcept;

 private:
  void advance(uint64_t now_ns, size_t in_use) noexcept;

  std::array<size_t, kSlots> slot_peaks_{};  // ring of the last whole slots
  size_t next_slot_ = 0;
  size_t current_peak_ = 0;  // peak of the slot in progress
  uint64_t slot_start_ns_ = 0;
  uint64_t last_call_ns_ = 0;
  bool started_ = false;
};

// The bytes of one block, owned. Large blocks get a mapping of their own so
// that freeing them really returns the pages (glibc would keep a 68 KiB
// chunk in its heap: its mmap threshold is 128 KiB and moves up on its own).
// At most kMaxMappedBlocks mappings exist process-wide (each may cost a VMA,
// and vm.max_map_count is 65530 by default); past that, or if mmap fails,
// blocks come from the heap.
class BlockBytes {
 public:
  static constexpr size_t kMapMinimum = 64 * 1024;
  static constexpr size_t kMaxMappedBlocks = 32768;

  BlockBytes() = default;
  explicit BlockBytes(size_t size);
  BlockBytes(BlockBytes&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        mapped_size_(std::exchange(other.mapped_size_, 0)) {}
  BlockBytes& operator=(BlockBytes&& other) noexcept;
  BlockBytes(const BlockBytes&) = delete;
  BlockBytes& operator=(const BlockBytes&) = delete;
  ~BlockBytes() { reset(); }

  std::byte* get() const noexcept { return data_; }
  bool mapped() const noexcept { return mapped_size_ != 0; }
  void reset() noexcept;

 private:
  std::byte* data_ = nullptr;
  size_t mapped_size_ = 0;  // 0: data_ came from new[]
};

struct Block {
  BlockBytes bytes;
  BufferPool* pool = nullptr;
  Block* next_free = nullptr;
  uint32_t refs = 0;
  // Free for the block's current holder: a replay buffer chains its blocks
  // through `chain_next` and records how much of each it has filled.
  Block* chain_next = nullptr;
  uint32_t chain_used = 0;
  size_t slot = 0;  // index in the pool's blocks_, for O(1) removal

  size_t capacity() const noexcept;
};

// A counted reference to a block. Move-only; share() makes another.
class BlockRef {
 public:
  BlockRef() = default;
  BlockRef(BlockRef&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  BlockRef& operator=(BlockRef&& other) noexcept {
    if (this != &other) {
      reset();
      block_ = std::exchange(other.block_, nullptr);
    }
    return *this;
  }
  BlockRef(const BlockRef&) = delete;
  BlockRef& operator=(const BlockRef&) = delete;
  ~BlockRef() { reset(); }

  BlockRef share() const noexcept {
    ++block_->refs;
    return BlockRef(block_);
  }
  void reset() noexcept;

  // Hands the reference over as a raw pointer (for intrusive chains), and
  // takes one back. Every released pointer must come back through
  // from_released() exactly once.
  Block* release() noexcept { return std::exchange(block_, nullptr); }
  static BlockRef from_released(Block* block) noexcept { return BlockRef(block); }
  // A new reference to a block someone else holds.
  static BlockRef share_of(Block* block) noexcept {
    ++block->refs;
    return BlockRef(block);
  }
  Block* get() const noexcept { return block_; }

  explicit operator bool() const noexcept { return block_ != nullptr; }
  std::byte* data() const noexcept { return block_->bytes.get(); }
  // True when no one else (an output frame) points into this block, so the
  // holder may overwrite it.
  bool unique() const noexcept { return block_->refs == 1; }

 private:
  friend class BufferPool;
  explicit BlockRef(Block* block) noexcept : block_(block) {}
  Block* block_ = nullptr;
};

class BufferPool {
 public:
  // block_size: bytes per block; preallocated: blocks created up front
  // (counted as allocations too: they are the warm-up).
  BufferPool(size_t block_size, size_t preallocated, PoolMetrics& metrics);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Never fails: grows the pool (and counts it) when the free list is empty.
  // O(1); allocates only when it grows.
  BlockRef acquire();

  // Gives back free blocks beyond recent need, a fraction per call (see the
  // top of this file); returns how many. Call it periodically (the
  // reactor's 100 ms tick) with a monotonic time in ns; never frees a block
  // in use, never goes below the preallocated count or the peak in use
  // within the last DecaySchedule::kWindowNs. Releases at most
  // max(1, kMaxReleaseBytesPerCall / block_size) blocks per call, which
  // bounds the time one call takes.
  size_t decay(uint64_t now_ns);
  static constexpr size_t kMaxReleaseBytesPerCall = 16 * 1024 * 1024;

  size_t block_size() const noexcept { return block_size_; }
  size_t blocks_total() const noexcept { return blocks_.size(); }
  size_t blocks_free() const noexcept { return free_count_; }
  size_t blocks_in_use() const noexcept { return blocks_.size() - free_count_; }
  size_t recent_peak() const noexcept { return schedule_.recent_peak(); }

  // Block capacity for a given max-frame: the whole frame fits, rounded up
  // to 4 KiB pages, at least 16 KiB so small frames batch well per read.
  static size_t block_size_for(uint32_t max_frame);

 private:
  friend class BlockRef;
  void grow();
  void release(Block* block) noexcept;
  // Frees one block from the free list; true if its bytes were heap memory.
  bool give_back_one() noexcept;

  size_t block_size_;
  size_t preallocated_;
  std::vector<std::unique_ptr<Block>> blocks_;  // owns every block it holds
  Block* free_list_ = nullptr;
  size_t free_count_ = 0;
  PoolMetrics& metrics_;
  DecaySchedule schedule_;
};

inline size_t Block::capacity() const noexcept {
  return pool->block_size();
}

inline void BlockRef::reset() noexcept {
  if (block_ && --block_->refs == 0) block_->pool->release(block_);
  block_ = nullptr;
}

}  // namespace flux
