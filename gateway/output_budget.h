#pragma once
// OutputBudget: one reactor's share of --max-pending-total, the bound on
// output queued by all its connections together.
//
// --max-pending bounds each connection, but not their sum: 1,000 clients
// that send and never read would each queue up to it. Past the reactor's
// share (the soft limit), a connection that holds at least the average
// queue (among those holding any) stops being read after its current read,
// so the biggest holders pause first and clients that read their echoes go
// on being served. Past the hard limit (soft + 1/8), every connection that
// still holds output after a write attempt pauses: below-average holders
// cannot together lift the total without bound. Clients that read their
// echoes hold nothing after the write and are never paused. Paused
// connections are read again once the total is back under three quarters
// of the share (hysteresis: no flapping at the line).
//
//   queued ──────────────────┬──────────────┬──────────────┬──────────>
//       served as usual   3/4 soft: relief  soft: holders   hard: every
//                                           >= average      holder pauses
//                                           pause
//
// Plain integers: one reactor thread, no atomics; updated when a queue
// grows or is written, never per byte.
//
// Thread contract: the owning reactor thread only.

#include <cstdint>

namespace flux {

class OutputBudget {
 public:
  explicit OutputBudget(uint64_t limit) noexcept : limit_(limit) {}

  // A connection's queue went from `before` to `after` bytes.
  void on_queue_change(uint64_t before, uint64_t after) noexcept {
    queued_ += after - before;  // modular: a shrink adds the negative difference
    if (before == 0 && after > 0) ++holders_;
    if (before > 0 && after == 0) --holders_;
  }

  // Whether a connection holding `pending` queued bytes should stop reading.
  bool should_pause(uint64_t pending) const noexcept {
    if (queued_ <= limit_ || pending == 0) return false;
    return queued_ > hard_limit() || pending * holders_ >= queued_;
  }
  uint64_t hard_limit() const noexcept { return limit_ + limit_ / 8; }
  bool relieved() const noexcept { return queued_ <= limit_ / 4 * 3; }

  void on_pause() noexcept { ++paused_; }
  void on_resume() noexcept { --paused_; }
  uint64_t paused() const noexcept { return paused_; }
  uint64_t queued() const noexcept { return queued_; }
  uint64_t limit() const noexcept { return limit_; }

 private:
  uint64_t limit_;
  uint64_t queued_ = 0;
  uint64_t holders_ = 0;  // connections with a non-empty queue
  uint64_t paused_ = 0;   // connections paused by this budget
};

}  // namespace flux
