#include "bench/fluxbench/worker.h"

#include <sys/epoll.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "bench/fluxbench/clock.h"
#include "bench/fluxbench/errno_text.h"
#include "bench/fluxbench/handshake.h"

// The worker's loop and phases (connect, traffic, sweep, stop) and the
// bookkeeping every part shares. The data path is in worker_receive.cc
// (events, echoes checked) and worker_send.cc (frames written, the open
// loop's schedule); --churn's drops and resumes in worker_churn.cc.

namespace flux::bench {
namespace {

constexpr size_t kScratchBytes = 256 * 1024;
constexpr uint32_t kOpensPerTurn = 256;
constexpr uint32_t kMaxInProgress = 1024;  // connects + handshakes at once, per worker
constexpr uint32_t kMaxControlPayload = 256;
constexpr uint64_t kConnectPhaseTick = 10 * kNsPerMs;
constexpr uint64_t kTrafficTick = 100 * kNsPerMs;
constexpr unsigned long kTimerSlackNs = 1000;  // precise wake-ups for the open-loop schedule

}  // namespace

Worker::Worker(const Options& options, const Target& target, RunControl& control,
               uint32_t first_conn, uint32_t conn_count)
    : options_(options),
      target_(target),
      control_(control),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      conns_(conn_count),
      in_scratch_(kScratchBytes + kFrameHeader + std::max(options.size, kMaxControlPayload)),
      out_scratch_(std::max<size_t>(kScratchBytes, kFrameHeader + options.size)) {
  if (!epoll_) {
    std::perror("fluxbench: epoll_create1");
    std::abort();
  }
  const size_t window = options.mode == LoadMode::kClosed ? options.window : 1;
  for (uint32_t i = 0; i < conn_count; ++i) {
    conns_[i].global_index = first_conn + i;
    conns_[i].sent.reserve(window);
  }
  const double share = static_cast<double>(conn_count) / static_cast<double>(options.conns);
  connect_rate_ = options.connect_rate * share;
  if (options.churn_rate > 0 && conn_count > 0)
    drop_period_ns_ = 1e9 / (options.churn_rate * share);
}

// ---------------------------------------------------------------- phases

void Worker::run() {
  ::prctl(PR_SET_TIMERSLACK, kTimerSlackNs, 0, 0, 0);
  began_ns_ = mono_ns();
  while (!finished_) {
    const uint64_t now = mono_ns();
    if (started_) {
      traffic_phase(now);
    } else {
      connect_phase(now);
    }
    if (finished_) break;
    const uint64_t wake = next_wake(now);
    wait_and_dispatch(wake > now ? wake - now : 0);
    if (started_) run_timers();
  }
  for (Connection& c : conns_) {
    if (c.open()) close(c);
  }
  done_.store(true, std::memory_order_release);
}

void Worker::connect_phase(uint64_t now) {
  if (control_.stop.load(std::memory_order_relaxed)) {
    hard_stop();
    return;
  }
  open_more(now);
  expire_pending(now);
  const uint64_t start = control_.start_ns.load(std::memory_order_acquire);
  if (start != 0 && now >= start) start_traffic(start, now);
}

void Worker::open_more(uint64_t now) {
  uint64_t allowed = conns_.size();
  if (connect_rate_ > 0) {
    const double elapsed = ns_to_seconds(now - began_ns_);
    allowed = std::min<uint64_t>(allowed, static_cast<uint64_t>(elapsed * connect_rate_) + 1);
  }
  for (uint32_t n = 0; n < kOpensPerTurn && opened_ < allowed && in_progress_ < kMaxInProgress;
       ++n) {
    Connection& c = conns_[opened_];
    const uint32_t index = opened_++;
    ConnectStart attempt = start_connect(target_, c.global_index);
    if (!attempt.fd) {
      counters_.connect_failed.add();
      note("connect: " + errno_text(attempt.error));
      continue;
    }
    c.fd = std::move(attempt.fd);
    c.state = ConnState::kConnecting;
    c.deadline_ns = now + options_.connect_timeout_ns;
    watch_connect(c, index);
    ++in_progress_;
    ++open_count_;
    pending_.push_back(index);
  }
}

// Connections that neither connected nor handshook within the timeout.
// `pending_` is in opening order, so deadlines only grow along it.
void Worker::expire_pending(uint64_t now) {
  while (!pending_.empty()) {
    Connection& c = conns_[pending_.front()];
    if (c.state != ConnState::kConnecting && c.state != ConnState::kHandshaking) {
      pending_.pop_front();
    } else if (c.deadline_ns <= now) {
      const bool connecting = c.state == ConnState::kConnecting;
      fail(c, connecting ? counters_.connect_failed : counters_.handshake_failed,
           connecting ? "connect: timed out" : "handshake: timed out");
      pending_.pop_front();
    } else {
      break;
    }
  }
}

void Worker::start_traffic(uint64_t start_ns, uint64_t now) {
  started_ = true;
  timeline_ = Timeline::from(start_ns, options_.warmup_ns, options_.duration_ns, options_.grace_ns);
  if (drop_period_ns_ > 0) next_drop_ns_ = start_ns + static_cast<uint64_t>(drop_period_ns_);
  const auto ready_total =
      std::max<uint64_t>(1, control_.ready_total.load(std::memory_order_relaxed));
  const double period = options_.mode == LoadMode::kOpen
                            ? 1e9 * static_cast<double>(ready_total) / options_.rate
                            : 0.0;
  for (uint32_t i = opened_; i < conns_.size(); ++i) {
    counters_.connect_failed.add();
    note("connect: not attempted within the connect budget");
  }
  opened_ = static_cast<uint32_t>(conns_.size());
  for (Connection& c : conns_) {
    if (c.state == ConnState::kConnecting || c.state == ConnState::kHandshaking) {
      const bool connecting = c.state == ConnState::kConnecting;
      fail(c, connecting ? counters_.connect_failed : counters_.handshake_failed,
           connecting ? "connect: connect budget spent" : "handshake: connect budget spent");
      continue;
    }
    if (c.state != ConnState::kReady) continue;
    if (options_.mode == LoadMode::kOpen) {
      // Spread the connections' phases evenly over one period.
      const double phase =
          period * static_cast<double>(c.global_index) / static_cast<double>(options_.conns);
      c.period_ns = period;
      c.sched_base_ns = start_ns + static_cast<uint64_t>(phase);
      schedule(c);
    } else {
      refill(c, now);
    }
  }
  pending_.clear();
}

void Worker::traffic_phase(uint64_t now) {
  if (control_.stop.load(std::memory_order_relaxed) || now >= timeline_.hard_stop_ns) {
    hard_stop();
    return;
  }
  if (drop_period_ns_ > 0) churn_tick(now);
  if (!resuming_.empty()) expire_resumes(now);
  if (!swept_ && control_.say_bye.load(std::memory_order_relaxed)) end_sweep(now);
  if (open_count_ == 0) finished_ = true;
}

// Every worker has drained: connections with nothing left to do say BYE
// (the others do when their last echo arrives, in try_finish()).
void Worker::end_sweep(uint64_t now) {
  swept_ = true;
  for (Connection& c : conns_) try_finish(c, now);
}

// Whatever is still in flight now was lost; whatever was due and not sent,
// unsent. Then every connection closes.
void Worker::hard_stop() {
  const bool interrupted = control_.stop.load(std::memory_order_relaxed);
  for (Connection& c : conns_) {
    if (!c.open()) continue;
    const bool resuming = c.state == ConnState::kReconnecting || c.state == ConnState::kResuming;
    if (!interrupted &&
        (c.state == ConnState::kReady || c.state == ConnState::kByeSent || resuming)) {
      if (resuming) note("hard stop: resume unfinished");
      if (!c.sent.empty()) note("hard stop: frames never echoed", c.sent.size());
      lose_in_flight(c);
      if (options_.mode == LoadMode::kOpen && started_) {
        const uint64_t due = c.frames_due_before(timeline_.end_ns);
        if (due >= c.next_counter) {
          counters_.unsent.add(due - (c.next_counter - 1));
          note("hard stop: frames due but never sent", due - (c.next_counter - 1));
        }
      }
      if (c.state == ConnState::kByeSent) note("bye: no answer before the hard stop");
    }
    close(c);
  }
  finished_ = true;
}

uint64_t Worker::next_wake(uint64_t now) const {
  if (!started_) {
    uint64_t wake = now + kConnectPhaseTick;
    const uint64_t start = control_.start_ns.load(std::memory_order_acquire);
    if (start != 0) wake = std::min(wake, start);
    if (connect_rate_ > 0 && opened_ < conns_.size() && in_progress_ < kMaxInProgress) {
      const auto next_token =
          began_ns_ + static_cast<uint64_t>(static_cast<double>(opened_) / connect_rate_ * 1e9);
      wake = std::min(wake, next_token);
    } else if (opened_ < conns_.size() && in_progress_ < kMaxInProgress) {
      wake = now;
    }
    return wake;
  }
  // After the end, look for say_bye as often as the main thread does.
  const bool awaiting_bye = now >= timeline_.end_ns && !swept_;
  uint64_t wake =
      std::min(now + (awaiting_bye ? kConnectPhaseTick : kTrafficTick), timeline_.hard_stop_ns);
  if (now < timeline_.end_ns) wake = std::min(wake, timeline_.end_ns);
  if (!timers_.empty()) wake = std::min(wake, timers_.top().first);
  if (drop_period_ns_ > 0 && next_drop_ns_ < timeline_.end_ns) wake = std::min(wake, next_drop_ns_);
  return wake;
}

// ---------------------------------------------------------------- bookkeeping

// A connect in progress: epoll reports its completion as writable.
void Worker::watch_connect(Connection& c, uint32_t index) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u32 = index;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev) != 0) {
    std::perror("fluxbench: epoll_ctl ADD");
    std::abort();
  }
  c.write_armed = true;
}

void Worker::set_write_interest(Connection& c, bool on) {
  if (c.write_armed == on) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.u32 = static_cast<uint32_t>(&c - conns_.data());
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) != 0) {
    std::perror("fluxbench: epoll_ctl MOD");
    std::abort();
  }
  c.write_armed = on;
}

void Worker::close(Connection& c) {
  if (!c.open()) return;
  if (c.state == ConnState::kConnecting || c.state == ConnState::kHandshaking) --in_progress_;
  --open_count_;
  c.fd.reset();  // also leaves the epoll set
  c.state = ConnState::kDone;
  c.reader.clear();
  c.out.clear();
  c.out.shrink_to_fit();
  c.out_off = 0;
}

void Worker::fail(Connection& c, Counter& counter, const std::string& why) {
  counter.add();
  note(why);
  close(c);
}

void Worker::lose_in_flight(Connection& c) {
  counters_.lost.add(c.sent.size());
  c.sent.clear();
}

uint32_t Worker::max_payload(const Connection& c) const noexcept {
  return c.state == ConnState::kHandshaking ? kMaxControlPayload
                                            : std::max(options_.size, kMaxControlPayload);
}

}  // namespace flux::bench
