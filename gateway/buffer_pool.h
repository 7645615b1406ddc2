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
// The pool only ever grows: a steady state that fits the blocks it already
// has allocates nothing. Each growth is counted in
// PoolMetrics::block_allocations_total (the buffer allocation rate). Several
// pools of one reactor (read blocks, replay blocks) may share one
// PoolMetrics: the byte gauges move by deltas, so they add up.
//
// Thread contract: reactor thread only (no locks, plain reference counts).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "metrics/reactor_metrics.h"

namespace flux {

class BufferPool;

struct Block {
  std::unique_ptr<std::byte[]> bytes;
  BufferPool* pool = nullptr;
  Block* next_free = nullptr;
  uint32_t refs = 0;
  // Free for the block's current holder: a replay buffer chains its blocks
  // through `chain_next` and records how much of each it has filled.
  Block* chain_next = nullptr;
  uint32_t chain_used = 0;

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
  // takes one back. Every released pointer must be adopted exactly once.
  Block* release() noexcept { return std::exchange(block_, nullptr); }
  static BlockRef adopt(Block* block) noexcept { return BlockRef(block); }
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
  BlockRef acquire();

  size_t block_size() const noexcept { return block_size_; }
  size_t blocks_total() const noexcept { return blocks_.size(); }
  size_t blocks_free() const noexcept { return free_count_; }

  // Block capacity for a given max-frame: the whole frame fits, rounded up
  // to 4 KiB pages, at least 16 KiB so small frames batch well per read.
  static size_t block_size_for(uint32_t max_frame);

 private:
  friend class BlockRef;
  void grow();
  void release(Block* block) noexcept;

  size_t block_size_;
  std::vector<std::unique_ptr<Block>> blocks_;  // owns every block ever made
  Block* free_list_ = nullptr;
  size_t free_count_ = 0;
  PoolMetrics& metrics_;
};

inline size_t Block::capacity() const noexcept { return pool->block_size(); }

inline void BlockRef::reset() noexcept {
  if (block_ && --block_->refs == 0) block_->pool->release(block_);
  block_ = nullptr;
}

}  // namespace flux
