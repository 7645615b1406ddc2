#include "gateway/replay_buffer.h"

#include <algorithm>
#include <cstring>

namespace flux {

uint32_t ReplayBuffer::length_at(const Block* block, size_t offset) noexcept {
  return decode_frame_header(block->bytes.get() + offset);
}

// The block the next `need` bytes go to: the tail if they fit, else a new
// block chained after it (small if the frame fits one, large otherwise).
Block* ReplayBuffer::block_for(size_t need) {
  if (tail_ && tail_->chain_used + need <= tail_->capacity()) return tail_;
  BufferPool& pool = need <= pools_.small.block_size() ? pools_.small : pools_.large;
  Block* block = pool.acquire().release();
  memory_bytes_ += block->capacity();
  if (tail_)
    tail_->chain_next = block;
  else
    head_ = block;  // an empty buffer holds no block, so head_offset_ is 0
  tail_ = block;
  return block;
}

size_t ReplayBuffer::room_for_run(size_t first_frame) const noexcept {
  if (tail_ && tail_->chain_used + first_frame <= tail_->capacity())
    return tail_->capacity() - tail_->chain_used;
  return first_frame <= pools_.small.block_size() ? pools_.small.block_size() : 0;
}

// Reserves `need` bytes at the tail for frames first_seq.. (count of them).
std::byte* ReplayBuffer::claim(uint64_t first_seq, size_t need, uint64_t count) {
  if (count_ == 0) first_seq_ = first_seq;
  Block* block = block_for(need);
  std::byte* at = block->bytes.get() + block->chain_used;
  block->chain_used += static_cast<uint32_t>(need);
  count_ += count;
  frame_bytes_ += need;
  return at;
}

ReplayBuffer::Stored ReplayBuffer::append(uint64_t seq, std::string_view payload) {
  std::byte* at = claim(seq, kLengthSize + payload.size(), 1);
  encode_frame_header(static_cast<uint32_t>(payload.size()), at);
  std::memcpy(at + kLengthSize, payload.data(), payload.size());
  return {BlockRef::share_of(tail_),
          {reinterpret_cast<const char*>(at + kLengthSize), payload.size()}};
}

ReplayBuffer::Stored ReplayBuffer::append_run(uint64_t first_seq, std::span<const std::byte> frames,
                                              uint64_t count) {
  std::byte* at = claim(first_seq, frames.size(), count);
  std::memcpy(at, frames.data(), frames.size());
  return {BlockRef::share_of(tail_), {reinterpret_cast<const char*>(at), frames.size()}};
}

void ReplayBuffer::prefetch_oldest(size_t bytes) const noexcept {
  if (!head_) return;
  constexpr size_t kCacheLine = 64;
  const std::byte* oldest = head_->bytes.get() + head_offset_;
  const size_t span = std::min<size_t>(bytes, head_->chain_used - head_offset_);
  for (size_t offset = 0; offset < span; offset += kCacheLine) __builtin_prefetch(oldest + offset);
}

bool ReplayBuffer::drop_oldest() noexcept {
  if (count_ == 0) return false;
  const size_t size = kLengthSize + length_at(head_, head_offset_);
  head_offset_ += size;
  frame_bytes_ -= size;
  --count_;
  ++first_seq_;
  // A head block with nothing left in it leaves the chain (and, once no
  // queued echo points into it, goes back to its pool).
  while (head_ && (head_offset_ >= head_->chain_used || count_ == 0)) {
    Block* done = head_;
    head_ = done->chain_next;
    if (!head_) tail_ = nullptr;
    head_offset_ = 0;
    memory_bytes_ -= done->capacity();
    BlockRef::from_released(done);  // the temporary drops the chain's reference
  }
  return true;
}

void ReplayBuffer::clear() noexcept {
  while (drop_oldest()) {
  }
}

}  // namespace flux
