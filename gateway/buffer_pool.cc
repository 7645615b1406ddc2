#include "gateway/buffer_pool.h"

#include <algorithm>

namespace flux {

BufferPool::BufferPool(size_t block_size, size_t preallocated, PoolMetrics& metrics)
    : block_size_(block_size), metrics_(metrics) {
  blocks_.reserve(preallocated);
  for (size_t i = 0; i < preallocated; ++i) grow();
}

// Blocks still lent out when the pool goes are the owners' bug, but the
// gauges stay truthful either way: this pool's bytes leave them.
BufferPool::~BufferPool() {
  metrics_.block_bytes_free.sub(free_count_ * block_size_);
  metrics_.block_bytes_in_use.sub((blocks_.size() - free_count_) * block_size_);
}

size_t BufferPool::block_size_for(uint32_t max_frame) {
  constexpr size_t kPage = 4096, kMinimum = 16 * 1024;
  size_t frame = size_t{max_frame} + 4;
  return std::max(kMinimum, (frame + kPage - 1) / kPage * kPage);
}

BlockRef BufferPool::acquire() {
  if (!free_list_) grow();
  Block* block = free_list_;
  free_list_ = block->next_free;
  --free_count_;
  block->next_free = nullptr;
  block->chain_next = nullptr;
  block->chain_used = 0;
  block->refs = 1;
  metrics_.block_acquires_total.add();
  metrics_.block_bytes_free.sub(block_size_);
  metrics_.block_bytes_in_use.add(block_size_);
  return BlockRef(block);
}

void BufferPool::grow() {
  auto block = std::make_unique<Block>();
  // make_unique_for_overwrite: no zero-fill of memory we are about to read into.
  block->bytes = std::make_unique_for_overwrite<std::byte[]>(block_size_);
  block->pool = this;
  block->next_free = free_list_;
  free_list_ = block.get();
  ++free_count_;
  blocks_.push_back(std::move(block));
  metrics_.block_allocations_total.add();
  metrics_.block_bytes_free.add(block_size_);
}

void BufferPool::release(Block* block) noexcept {
  block->next_free = free_list_;
  free_list_ = block;
  ++free_count_;
  metrics_.block_bytes_in_use.sub(block_size_);
  metrics_.block_bytes_free.add(block_size_);
}

}  // namespace flux
