#include "gateway/buffer_pool.h"

#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

namespace flux {
namespace {

// Mappings made by every pool of the process (pools live on several reactor
// threads), held under BlockBytes::kMaxMappedBlocks.
std::atomic<size_t> g_mapped_blocks{0};

bool reserve_mapping() noexcept {
  size_t n = g_mapped_blocks.load(std::memory_order_relaxed);
  do {
    if (n >= BlockBytes::kMaxMappedBlocks) return false;
  } while (!g_mapped_blocks.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
  return true;
}

}  // namespace

// ------------------------------------------------------------- DecaySchedule

void DecaySchedule::advance(uint64_t now_ns, size_t in_use) noexcept {
  const uint64_t elapsed = now_ns > slot_start_ns_ ? (now_ns - slot_start_ns_) / kSlotNs : 0;
  if (elapsed == 0) return;
  // After a gap of several slots the peak seen meanwhile goes in the newest
  // one (it may have happened just now); the slots before it saw no more
  // than what is in use now.
  for (uint64_t i = 1; i < std::min<uint64_t>(elapsed, kSlots); ++i) {
    slot_peaks_[next_slot_] = in_use;
    next_slot_ = (next_slot_ + 1) % kSlots;
  }
  slot_peaks_[next_slot_] = current_peak_;
  next_slot_ = (next_slot_ + 1) % kSlots;
  current_peak_ = in_use;
  slot_start_ns_ += elapsed * kSlotNs;
}

size_t DecaySchedule::recent_peak() const noexcept {
  return std::max(current_peak_, *std::max_element(slot_peaks_.begin(), slot_peaks_.end()));
}

size_t DecaySchedule::due(uint64_t now_ns, size_t total, size_t in_use, size_t floor,
                          size_t max_per_call) noexcept {
  note_in_use(in_use);
  if (!started_) {
    // Until the window has run once, everything before it counts as recent.
    started_ = true;
    slot_start_ns_ = last_call_ns_ = now_ns;
    slot_peaks_.fill(current_peak_);
    return 0;
  }
  advance(now_ns, in_use);
  const uint64_t elapsed = now_ns > last_call_ns_ ? now_ns - last_call_ns_ : 0;
  last_call_ns_ = now_ns;
  const size_t keep = std::max(floor, recent_peak());
  if (total <= keep || elapsed == 0) return 0;
  const size_t excess = total - keep;
  // ceil(excess * elapsed / kReleaseNs), in integers; the clamp keeps the
  // product in 64 bits (4e9 units is far beyond any pool).
  const uint64_t scaled = std::min<uint64_t>(excess, uint64_t{1} << 32);
  const uint64_t paced = (scaled * std::min(elapsed, kReleaseNs) + kReleaseNs - 1) / kReleaseNs;
  return std::min({static_cast<size_t>(paced), excess, max_per_call});
}

// ---------------------------------------------------------------- BlockBytes

BlockBytes::BlockBytes(size_t size) {
  if (size >= kMapMinimum && reserve_mapping()) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      data_ = static_cast<std::byte*>(p);
      mapped_size_ = size;
      return;
    }
    g_mapped_blocks.fetch_sub(1, std::memory_order_relaxed);
  }
  // No zero-fill of memory we are about to read into.
  data_ = new std::byte[size];
}

BlockBytes& BlockBytes::operator=(BlockBytes&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    mapped_size_ = std::exchange(other.mapped_size_, 0);
  }
  return *this;
}

void BlockBytes::reset() noexcept {
  if (!data_) return;
  if (mapped_size_ == 0) {
    delete[] data_;
  } else {
    if (::munmap(data_, mapped_size_) != 0) {
      // Only a bad pointer or length fails here: our own bookkeeping is broken.
      perror("flux: munmap of a buffer block");
      std::abort();
    }
    g_mapped_blocks.fetch_sub(1, std::memory_order_relaxed);
  }
  data_ = nullptr;
  mapped_size_ = 0;
}

// ---------------------------------------------------------------- BufferPool

BufferPool::BufferPool(size_t block_size, size_t preallocated, PoolMetrics& metrics)
    : block_size_(block_size), preallocated_(preallocated), metrics_(metrics) {
  blocks_.reserve(preallocated);
  for (size_t i = 0; i < preallocated; ++i) grow();
}

// Blocks still lent out when the pool goes are the owners' bug, but the
// gauges stay truthful either way: this pool's bytes leave them.
BufferPool::~BufferPool() {
  metrics_.block_bytes_free.sub(free_count_ * block_size_);
  metrics_.block_bytes_in_use.sub(blocks_in_use() * block_size_);
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
  schedule_.note_in_use(blocks_in_use());
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
  block->bytes = BlockBytes(block_size_);
  block->pool = this;
  block->next_free = free_list_;
  block->slot = blocks_.size();
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

size_t BufferPool::decay(uint64_t now_ns) {
  const size_t per_call = std::max<size_t>(1, kMaxReleaseBytesPerCall / block_size_);
  const size_t due =
      schedule_.due(now_ns, blocks_.size(), blocks_in_use(), preallocated_, per_call);
  bool freed_heap = false;
  for (size_t i = 0; i < due; ++i) freed_heap |= give_back_one();
  // glibc keeps freed chunks in its arenas; trimming returns their whole
  // pages to the kernel (all arenas, so other threads' frees too).
  if (freed_heap) malloc_trim(0);
  return due;
}

bool BufferPool::give_back_one() noexcept {
  Block* block = free_list_;  // due() never asks for more than the free blocks
  free_list_ = block->next_free;
  --free_count_;
  const bool heap = !block->bytes.mapped();
  // Swap-and-pop keeps blocks_ dense; the moved block learns its new slot.
  const size_t slot = block->slot;
  std::swap(blocks_[slot], blocks_.back());
  blocks_[slot]->slot = slot;
  blocks_.pop_back();  // frees the block and its bytes
  metrics_.block_releases_total.add();
  metrics_.block_bytes_free.sub(block_size_);
  return heap;
}

}  // namespace flux
