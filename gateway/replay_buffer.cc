#include "gateway/replay_buffer.h"

#include <cstring>

namespace flux {

uint32_t ReplayBuffer::length_at(const Block* block, size_t offset) noexcept {
  uint32_t length = 0;
  std::memcpy(&length, block->bytes.get() + offset, kLengthSize);
  return length;
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

ReplayBuffer::Stored ReplayBuffer::append(uint64_t seq, std::string_view payload) {
  if (count_ == 0) first_seq_ = seq;
  const auto length = static_cast<uint32_t>(payload.size());
  const size_t need = kLengthSize + payload.size();
  Block* block = block_for(need);
  std::byte* at = block->bytes.get() + block->chain_used;
  std::memcpy(at, &length, kLengthSize);
  std::memcpy(at + kLengthSize, payload.data(), payload.size());
  block->chain_used += static_cast<uint32_t>(need);
  ++count_;
  frame_bytes_ += need;
  return {BlockRef::share_of(block),
          {reinterpret_cast<const char*>(at + kLengthSize), payload.size()}};
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
