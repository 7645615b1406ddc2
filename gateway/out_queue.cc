#include "gateway/out_queue.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "gateway/frame_parser.h"
#include "gateway/loop_clock.h"

namespace flux {

OutFrame* FrameNodePool::acquire() {
  if (!free_list_) grow();
  OutFrame* frame = free_list_;
  free_list_ = frame->next;
  frame->next = nullptr;
  ++in_use_;
  deepest_ = std::max(deepest_, in_use_);
  schedule_.note_in_use((in_use_ + kChunk - 1) / kChunk);
  return frame;
}

void FrameNodePool::release(OutFrame* frame) noexcept {
  frame->block.reset();
  frame->tail = nullptr;
  frame->tail_length = 0;
  frame->head_length = 0;
  frame->frames = 1;
  frame->read_at_ns = 0;
  frame->next = free_list_;
  free_list_ = frame;
  --in_use_;
}

void FrameNodePool::grow() {
  chunks_.push_back(std::make_unique<OutFrame[]>(kChunk));
  OutFrame* chunk = chunks_.back().get();
  for (size_t i = 0; i < kChunk; ++i) {
    chunk[i].next = free_list_;
    free_list_ = &chunk[i];
  }
  ordered_ = false;  // the new chunk sits on top of the stack, out of order
  metrics_.frame_node_allocations_total.add();
}

void FrameNodePool::lay_out_in_order() noexcept {
  OutFrame* below = nullptr;
  for (size_t c = chunks_.size(); c-- > 0;) {
    for (size_t i = kChunk; i-- > 0;) {
      chunks_[c][i].next = below;
      below = &chunks_[c][i];
    }
  }
  free_list_ = below;
  ordered_ = true;
  deepest_ = 0;
}

size_t FrameNodePool::decay(uint64_t now_ns) {
  const size_t per_call =
      std::max<size_t>(1, BufferPool::kMaxReleaseBytesPerCall / sizeof(OutFrame[kChunk]));
  const size_t in_use_chunks = (in_use_ + kChunk - 1) / kChunk;
  const size_t due = schedule_.due(now_ns, chunks_.size(), in_use_chunks, 0, per_call);
  if (due == 0) return 0;
  if (!ordered_) {
    if (in_use_ != 0) return 0;  // nodes of any chunk may be out: wait for an idle tick
    lay_out_in_order();
  }
  const size_t keep = chunks_.size() - due;
  if (keep * kChunk <= deepest_ && keep > 0) {
    ordered_ = false;  // the cut point was disturbed: lay out again when idle
    return 0;
  }
  if (keep == 0)
    free_list_ = nullptr;
  else
    chunks_[keep - 1][kChunk - 1].next = nullptr;  // the stack's bottom chunks drop off
  chunks_.resize(keep);
  metrics_.frame_node_releases_total.add(due);
  return due;
}

void OutQueue::push(std::string_view text, BlockRef tail_owner, std::string_view tail,
                    uint64_t read_at_ns) {
  OutFrame* frame = nodes_.acquire();
  const auto payload_length = static_cast<uint32_t>(text.size() + tail.size());
  encode_frame_header(payload_length, frame->head.data());
  assert(text.size() <= OutFrame::kHeadCapacity - kFrameHeaderSize);
  if (!text.empty())  // an echo has no text, and memcpy from null is UB even for 0 bytes
    std::memcpy(frame->head.data() + kFrameHeaderSize, text.data(), text.size());
  frame->head_length = static_cast<uint8_t>(kFrameHeaderSize + text.size());
  frame->tail = reinterpret_cast<const std::byte*>(tail.data());
  frame->tail_length = static_cast<uint32_t>(tail.size());
  frame->block = std::move(tail_owner);
  frame->read_at_ns = read_at_ns;
  link(frame);
}

void OutQueue::push_run(BlockRef owner, std::string_view frames, uint32_t count,
                        uint64_t read_at_ns) {
  OutFrame* frame = nodes_.acquire();
  frame->tail = reinterpret_cast<const std::byte*>(frames.data());
  frame->tail_length = static_cast<uint32_t>(frames.size());
  frame->frames = count;
  frame->block = std::move(owner);
  frame->read_at_ns = read_at_ns;
  link(frame);
}

void OutQueue::link(OutFrame* frame) noexcept {
  if (tail_)
    tail_->next = frame;
  else
    head_ = frame;
  tail_ = frame;
  pending_bytes_ += frame->size();
  ++pushed_;
  ++queued_entries_;
}

void OutQueue::drop_held() noexcept {
  if (hold_from_ == kNoHold) return;
  uint64_t number = pushed_ - queued_entries_;
  OutFrame* keep_last = nullptr;  // the last frame that may still go
  for (OutFrame* f = head_; f && number < hold_from_; f = f->next, ++number) keep_last = f;
  OutFrame* drop = keep_last ? keep_last->next : head_;
  if (keep_last)
    keep_last->next = nullptr;
  else
    head_ = nullptr;
  tail_ = keep_last;
  while (drop) {
    OutFrame* next = drop->next;
    pending_bytes_ -= drop->size();
    --queued_entries_;
    nodes_.release(drop);
    drop = next;
  }
  hold_from_ = kNoHold;
}

OutQueue::Flush OutQueue::flush(int fd, FlushTally& tally) {
  // 128 frames per call: enough to amortise the syscall, small on the stack.
  constexpr int kMaxIov = 256;
  while (head_) {
    iovec iov[kMaxIov];
    int count = 0;
    size_t skip = head_sent_;
    uint64_t number = pushed_ - queued_entries_;  // of head_
    for (OutFrame* f = head_; f && count + 2 <= kMaxIov && number < hold_from_;
         f = f->next, skip = 0, ++number) {
      size_t head_skip = skip < f->head_length ? skip : f->head_length;
      if (head_skip < f->head_length)
        iov[count++] = {f->head.data() + head_skip, f->head_length - head_skip};
      size_t tail_skip = skip - head_skip;
      if (tail_skip < f->tail_length)
        iov[count++] = {const_cast<std::byte*>(f->tail) + tail_skip, f->tail_length - tail_skip};
    }
    if (count == 0) return Flush::kDrained;  // what is left is held (echo after persist)
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return (errno == EAGAIN || errno == EWOULDBLOCK) ? Flush::kBlocked : Flush::kFailed;
    }
    tally.bytes += static_cast<uint64_t>(n);
    consume(static_cast<size_t>(n), tally);
  }
  return Flush::kDrained;
}

void OutQueue::consume(size_t written, FlushTally& tally) noexcept {
  pending_bytes_ -= written;
  uint64_t now_ns = 0;  // read at most once per write, and only for echoes
  while (head_ && written > 0) {
    size_t left_in_head = head_->size() - head_sent_;
    if (written < left_in_head) {
      head_sent_ += written;
      return;
    }
    if (head_->read_at_ns != 0 && tally.echo_latency) {
      if (now_ns == 0) now_ns = monotonic_ns();
      tally.echo_latency->record_many(now_ns > head_->read_at_ns ? now_ns - head_->read_at_ns : 0,
                                      head_->frames);
    }
    written -= left_in_head;
    OutFrame* done = head_;
    head_ = done->next;
    if (!head_) tail_ = nullptr;
    head_sent_ = 0;
    tally.frames += done->frames;
    nodes_.release(done);
    --queued_entries_;
  }
  // Zero-length frames still carry 4 header bytes, so no frame is left
  // complete-but-unpopped once `written` runs out.
}

void OutQueue::clear() noexcept {
  while (head_) {
    OutFrame* done = head_;
    head_ = done->next;
    nodes_.release(done);
  }
  tail_ = nullptr;
  head_sent_ = 0;
  pending_bytes_ = 0;
  queued_entries_ = 0;
  hold_from_ = kNoHold;
}

}  // namespace flux
