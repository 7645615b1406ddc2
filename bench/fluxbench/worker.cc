#include "bench/fluxbench/worker.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "bench/fluxbench/clock.h"
#include "bench/fluxbench/handshake.h"
#include "bench/fluxbench/payload.h"

namespace flux::bench {
namespace {

constexpr size_t kScratchBytes = 256 * 1024;
constexpr int kReadsPerEvent = 4;  // then give the other connections a turn
constexpr uint32_t kOpensPerTurn = 256;
constexpr uint32_t kMaxInProgress = 1024;     // connects + handshakes at once, per worker
constexpr uint64_t kMaxBatch = 256;           // open loop: frames per connection per turn
constexpr unsigned kMaxTimersPerTurn = 4096;  // then poll again: reads must not starve
constexpr int kMaxEvents = 512;
constexpr uint32_t kMaxControlPayload = 256;
constexpr uint64_t kConnectPhaseTick = 10 * kNsPerMs;
constexpr uint64_t kTrafficTick = 100 * kNsPerMs;
constexpr unsigned long kTimerSlackNs = 1000;  // precise wake-ups for the open-loop schedule

std::string errno_text(int error) {
  return std::strerror(error);
}

bool is_reset(int error) {
  return error == ECONNRESET || error == EPIPE;
}

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
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = index;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev) != 0) {
      std::perror("fluxbench: epoll_ctl ADD");
      std::abort();
    }
    c.write_armed = true;
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

// ---------------------------------------------------------------- events

void Worker::wait_and_dispatch(uint64_t timeout_ns) {
  epoll_event events[kMaxEvents];
  const timespec timeout{static_cast<time_t>(timeout_ns / kNsPerSec),
                         static_cast<long>(timeout_ns % kNsPerSec)};
  const int n = ::epoll_pwait2(epoll_.get(), events, kMaxEvents, &timeout, nullptr);
  if (n < 0) {
    if (errno == EINTR) return;
    std::perror("fluxbench: epoll_pwait2");
    std::abort();
  }
  for (int i = 0; i < n; ++i) {
    Connection& c = conns_[events[i].data.u32];
    if (c.open()) on_event(c, events[i].events);
  }
}

void Worker::on_event(Connection& c, uint32_t events) {
  if (c.state == ConnState::kConnecting) {
    on_connected(c);
    return;
  }
  if (c.state == ConnState::kReconnecting) {
    on_reconnected(c);
    return;
  }
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) on_readable(c);
  if (c.open() && (events & EPOLLOUT) != 0) on_writable(c);
}

void Worker::on_connected(Connection& c) {
  if (const int error = connect_error(c.fd.get()); error != 0) {
    fail(c, counters_.connect_failed, "connect: " + errno_text(error));
    return;
  }
  const auto hello = hello_frame();
  std::string first = options_.proxy_v2 ? proxy_v2_header(c.fd.get()) : std::string();
  first.append(reinterpret_cast<const char*>(hello.data()), hello.size());
  const ssize_t n = ::send(c.fd.get(), first.data(), first.size(), MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(first.size())) {
    fail(c, counters_.handshake_failed, "handshake: could not send FLUX_HELLO");
    return;
  }
  c.state = ConnState::kHandshaking;
  set_write_interest(c, false);
}

void Worker::on_readable(Connection& c) {
  uint8_t* scratch = in_scratch_.data();
  for (int i = 0; i < kReadsPerEvent && c.open(); ++i) {
    const size_t carried = c.reader.restore(scratch);
    const size_t room = in_scratch_.size() - carried;
    const ssize_t n = ::recv(c.fd.get(), scratch + carried, room, 0);
    if (n == 0) {
      if (c.state == ConnState::kResuming) {
        resume_failed(c, "resume: closed by the server");
      } else if (c.state == ConnState::kHandshaking) {
        fail(c, counters_.handshake_failed, "handshake: closed by the server");
      } else if (c.state == ConnState::kByeSent && c.sent.empty()) {
        counters_.closed_clean.add();
        close(c);
      } else if (resumes_on_close(c)) {
        server_closed(c);
      } else {
        lose_in_flight(c);
        fail(c, counters_.closed_by_server, "ready: closed by the server");
      }
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      const int error = errno;
      if (c.state == ConnState::kResuming) {
        resume_failed(c, "resume: " + errno_text(error));
      } else if (c.state == ConnState::kHandshaking) {
        fail(c, counters_.handshake_failed, "handshake: " + errno_text(error));
      } else if (resumes_on_close(c)) {
        server_closed(c);
      } else {
        lose_in_flight(c);
        fail(c, counters_.closed_by_server, "ready: " + errno_text(error));
      }
      return;
    }
    const uint64_t now = mono_ns();
    const auto result =
        c.reader.consume(scratch, carried + static_cast<size_t>(n), max_payload(c),
                         [&](const uint8_t* p, uint32_t len) { return on_frame(c, p, len, now); });
    if (result == FrameReader::Result::kTooLarge) {
      counters_.oversized.add();
      lose_in_flight(c);
      fail(c, counters_.closed_by_server, "ready: a frame larger than any expected reply");
      return;
    }
    if (static_cast<size_t>(n) < room) break;  // the socket is drained
  }
  if (c.state == ConnState::kReady) {
    const uint64_t now = mono_ns();
    refill(c, now);
    try_finish(c, now);
  }
}

bool Worker::on_frame(Connection& c, const uint8_t* payload, uint32_t len, uint64_t now) {
  const std::string_view text(reinterpret_cast<const char*>(payload), len);
  if (c.state == ConnState::kResuming) return on_resume_reply(c, payload, len, now);
  if (c.state != ConnState::kHandshaking) return on_ready_frame(c, payload, len, now);
  if (!is_ready_reply(text)) {
    fail(c, counters_.handshake_failed, "handshake: " + control_label(text));
    return false;
  }
  c.session_id = std::string(ready_session_id(text));
  c.state = ConnState::kReady;
  --in_progress_;
  counters_.ready.add();
  return true;
}

bool Worker::on_ready_frame(Connection& c, const uint8_t* payload, uint32_t len, uint64_t now) {
  const std::string_view text(reinterpret_cast<const char*>(payload), len);
  if (!is_control(text)) return on_echo(c, payload, len, now);
  if (c.state == ConnState::kByeSent && text == "FLUX_BYE") {
    counters_.closed_clean.add();
    close(c);
    return false;
  }
  // FLUX_ERROR and anything else unasked for. A fatal error is followed by
  // the server's close, which loses whatever is in flight.
  counters_.server_errors.add();
  note("ready: " + control_label(text));
  return true;
}

bool Worker::on_echo(Connection& c, const uint8_t* payload, uint32_t len, uint64_t now) {
  if (c.sent.empty() ||
      !payload_matches(payload, len, options_.size, c.expect_counter, c.sent.front())) {
    // Order is broken from here on: stop trusting this connection.
    counters_.mismatched.add();
    note(c.sent.empty() ? "echo: nothing was in flight" : "echo: mismatch or out of order");
    if (!c.sent.empty()) c.sent.pop();
    lose_in_flight(c);
    close(c);
    return false;
  }
  const uint64_t send_ns = c.sent.front();
  c.sent.pop();
  ++c.expect_counter;
  counters_.received.add();
  if (c.replay_left > 0) {
    --c.replay_left;
    counters_.replayed.add();
  }
  live_.record(now - send_ns);
  if (timeline_.measured(send_ns)) latency_.record(now - send_ns);
  if (timeline_.measured(now)) {
    counters_.received_measured.add();
    counters_.bytes_measured.add(len);
  }
  return true;
}

void Worker::on_writable(Connection& c) {
  while (c.out_pending()) {
    const ssize_t n =
        ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else if (resumes_on_close(c)) {
      stop_writing(c);
      return;
    } else {
      const int error = n < 0 ? errno : EPIPE;
      lose_in_flight(c);
      fail(c, counters_.closed_by_server, "ready: " + errno_text(error));
      return;
    }
  }
  c.out.clear();
  c.out_off = 0;
  set_write_interest(c, false);
  if (c.state != ConnState::kReady) return;
  const uint64_t now = mono_ns();
  if (options_.mode == LoadMode::kOpen) {
    schedule(c);
  } else {
    refill(c, now);
  }
  try_finish(c, now);
}

// ---------------------------------------------------------------- sending

// Closed loop: top the window up, until the measured window ends.
void Worker::refill(Connection& c, uint64_t now) {
  if (options_.mode != LoadMode::kClosed || !started_ || now >= timeline_.end_ns ||
      c.out_pending()) {
    return;
  }
  if (c.sent.size() < options_.window) emit(c, options_.window - c.sent.size(), now);
}

// Open loop: every frame whose time has come, up to kMaxBatch.
void Worker::send_due(Connection& c, uint64_t now) {
  uint64_t count = 0;
  uint64_t counter = c.next_counter;
  while (count < kMaxBatch) {
    const uint64_t due = c.intended_ns(counter);
    if (due > now || due >= timeline_.end_ns) break;
    ++count;
    ++counter;
  }
  if (count > 0) emit(c, count, now);
}

// Writes `count` frames (closed loop: stamped now; open loop: stamped with
// their scheduled time), in chunks of the scratch buffer, until the kernel
// refuses bytes; those wait in c.out.
void Worker::emit(Connection& c, uint64_t count, uint64_t now) {
  const size_t frame_bytes = kFrameHeader + options_.size;
  const size_t per_chunk = out_scratch_.size() / frame_bytes;
  const bool open_loop = options_.mode == LoadMode::kOpen;
  while (count > 0 && c.state == ConnState::kReady && !c.out_pending()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(count, per_chunk));
    uint8_t* p = out_scratch_.data();
    for (size_t i = 0; i < n; ++i, p += frame_bytes) {
      const uint64_t stamp = open_loop ? c.intended_ns(c.next_counter) : now;
      if (open_loop && timeline_.measured(stamp)) send_lag_.record(now - stamp);
      write_frame(p, options_.size, c.next_counter++, stamp);
      c.sent.push(stamp);
    }
    counters_.sent.add(n);
    count -= n;
    write_out(c, out_scratch_.data(), n * frame_bytes);
  }
}

void Worker::write_out(Connection& c, const uint8_t* data, size_t len) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::send(c.fd.get(), data + done, len - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      c.out.assign(data + done, data + len);
      c.out_off = 0;
      set_write_interest(c, true);
      return;
    } else if (resumes_on_close(c)) {
      stop_writing(c);
      return;
    } else {
      const int error = n < 0 ? errno : EPIPE;
      lose_in_flight(c);
      fail(c, counters_.closed_by_server,
           is_reset(error) ? "ready: reset by the server" : "ready: " + errno_text(error));
      return;
    }
  }
}

// Open loop: queue the connection's next frame on the timer heap, unless it
// is waiting for the kernel (schedule() again after the flush) or done.
void Worker::schedule(Connection& c) {
  if (c.state != ConnState::kReady || c.scheduled || c.out_pending()) return;
  const uint64_t due = c.intended_ns(c.next_counter);
  if (due >= timeline_.end_ns) return;
  timers_.emplace(due, static_cast<uint32_t>(&c - conns_.data()));
  c.scheduled = true;
}

void Worker::run_timers() {
  uint64_t now = mono_ns();
  unsigned handled = 0;
  while (!timers_.empty() && timers_.top().first <= now && handled < kMaxTimersPerTurn) {
    Connection& c = conns_[timers_.top().second];
    timers_.pop();
    c.scheduled = false;
    if (c.state != ConnState::kReady || c.out_pending()) continue;
    send_due(c, now);
    schedule(c);
    try_finish(c, now);
    if (++handled % 64 == 0) now = mono_ns();
  }
}

bool Worker::sending_over(const Connection& c, uint64_t now) const {
  if (!started_) return false;
  if (options_.mode == LoadMode::kClosed) return now >= timeline_.end_ns;
  return c.intended_ns(c.next_counter) >= timeline_.end_ns;
}

// Nothing left to send or to receive, and the drain is over: say goodbye.
void Worker::try_finish(Connection& c, uint64_t now) {
  if (!swept_ || c.state != ConnState::kReady || !c.sent.empty() || c.out_pending() ||
      !sending_over(c, now)) {
    return;
  }
  const auto bye = bye_frame();
  if (::send(c.fd.get(), bye.data(), bye.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(bye.size())) {
    note("bye: could not send FLUX_BYE");
    close(c);
    return;
  }
  c.state = ConnState::kByeSent;
}

// ---------------------------------------------------------------- churn

// The drops due by now (this worker's share of --churn), during warm-up and
// the measured window only; a bounded number per turn.
void Worker::churn_tick(uint64_t now) {
  constexpr unsigned kMaxDropsPerTurn = 64;
  for (unsigned n = 0;
       n < kMaxDropsPerTurn && next_drop_ns_ <= now && next_drop_ns_ < timeline_.end_ns; ++n) {
    next_drop_ns_ += static_cast<uint64_t>(drop_period_ns_);
    // The next READY connection, round-robin.
    Connection* victim = nullptr;
    for (size_t probe = 0; probe < conns_.size() && victim == nullptr; ++probe) {
      Connection& c = conns_[drop_cursor_];
      drop_cursor_ = (drop_cursor_ + 1) % static_cast<uint32_t>(conns_.size());
      if (c.state == ConnState::kReady && !c.session_id.empty()) victim = &c;
    }
    if (victim == nullptr) {
      note("churn: no READY connection to drop");
      continue;
    }
    drop(*victim, now);
  }
}

// RST the connection (no FLUX_BYE), then reconnect from the same source
// address. What was in flight stays in c.sent; what the kernel had not
// taken yet (c.out) is re-sent from c.sent after the resume.
void Worker::drop(Connection& c, uint64_t now) {
  const linger abort{1, 0};
  ::setsockopt(c.fd.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  counters_.drops.add();
  reconnect(c, now);
}

// --resume-on-close: the server ended a READY connection (EOF or reset, e.g.
// its node was killed): resume it as after a drop, with the same checks.
bool Worker::resumes_on_close(const Connection& c) const noexcept {
  return options_.resume_on_close && c.state == ConnState::kReady && !c.session_id.empty();
}

void Worker::server_closed(Connection& c) {
  counters_.server_closes.add();
  reconnect(c, mono_ns());
}

// A write failed on a connection that will be resumed: what was not written
// is in c.sent (re-sent after the resume); the read side sees the close
// (EOF or reset, level-triggered) and reconnects.
void Worker::stop_writing(Connection& c) {
  c.out.clear();
  c.out_off = 0;
  set_write_interest(c, false);
}

void Worker::reconnect(Connection& c, uint64_t now) {
  c.fd.reset();
  c.reader.clear();
  c.out.clear();
  c.out_off = 0;
  c.write_armed = false;
  c.replay_left = 0;
  c.dropped_ns = now;
  ConnectStart attempt = start_connect(target_, c.global_index);
  if (!attempt.fd) {
    resume_failed(c, "resume: reconnect: " + errno_text(attempt.error));
    return;
  }
  c.fd = std::move(attempt.fd);
  c.state = ConnState::kReconnecting;
  c.deadline_ns = now + options_.connect_timeout_ns;
  const auto index = static_cast<uint32_t>(&c - conns_.data());
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u32 = index;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev) != 0) {
    std::perror("fluxbench: epoll_ctl ADD");
    std::abort();
  }
  c.write_armed = true;
  resuming_.push_back(index);
}

void Worker::on_reconnected(Connection& c) {
  if (const int error = connect_error(c.fd.get()); error != 0) {
    resume_failed(c, "resume: connect: " + errno_text(error));
    return;
  }
  const std::string frame = (options_.proxy_v2 ? proxy_v2_header(c.fd.get()) : std::string()) +
                            resume_frame(c.session_id, c.expect_counter - 1);
  const ssize_t n = ::send(c.fd.get(), frame.data(), frame.size(), MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(frame.size())) {
    resume_failed(c, "resume: could not send FLUX_RESUME");
    return;
  }
  c.state = ConnState::kResuming;
  set_write_interest(c, false);
}

// FLUX_READY <id> <seq>: echoes last-seq+1 .. seq are replays and come next;
// frames after seq never reached the server and are sent again now.
bool Worker::on_resume_reply(Connection& c, const uint8_t* payload, uint32_t len, uint64_t now) {
  const std::string_view text(reinterpret_cast<const char*>(payload), len);
  uint64_t seq = 0;
  if (!parse_resume_reply(text, c.session_id, seq)) {
    resume_failed(c, "resume: " + control_label(text));
    return false;
  }
  const uint64_t last_seq = c.expect_counter - 1;
  const uint64_t last_sent = c.next_counter - 1;
  if (seq < last_seq || seq > last_sent) {
    // The server claims frames we never sent, or forgot echoes we received.
    counters_.mismatched.add();
    note("resume: FLUX_READY seq outside [last-seq, last sent]");
    lose_in_flight(c);
    close(c);
    return false;
  }
  counters_.resumes.add();
  resume_latency_.record(now - c.dropped_ns);
  c.replay_left = seq - last_seq;
  c.state = ConnState::kReady;
  resend_unread(c);
  if (c.state != ConnState::kReady) return false;
  if (options_.mode == LoadMode::kOpen) schedule(c);
  return true;
}

// Frames in c.sent after the c.replay_left replays, oldest first, with their
// original counter and stamp (so their echoes match byte for byte).
void Worker::resend_unread(Connection& c) {
  const size_t first = static_cast<size_t>(c.replay_left);
  if (c.sent.size() <= first) return;
  const size_t count = c.sent.size() - first;
  const size_t frame_bytes = kFrameHeader + options_.size;
  resend_scratch_.resize(count * frame_bytes);
  uint8_t* p = resend_scratch_.data();
  const uint64_t first_counter = c.expect_counter + first;
  for (size_t i = 0; i < count; ++i, p += frame_bytes) {
    write_frame(p, options_.size, first_counter + i, c.sent.at(first + i));
  }
  counters_.resent.add(count);
  write_out(c, resend_scratch_.data(), resend_scratch_.size());
}

void Worker::expire_resumes(uint64_t now) {
  std::erase_if(resuming_, [&](uint32_t index) {
    Connection& c = conns_[index];
    if (c.state != ConnState::kReconnecting && c.state != ConnState::kResuming) return true;
    if (c.deadline_ns > now) return false;
    resume_failed(c, c.state == ConnState::kReconnecting ? "resume: connect timed out"
                                                         : "resume: no FLUX_READY in time");
    return true;
  });
}

void Worker::resume_failed(Connection& c, const std::string& why) {
  lose_in_flight(c);
  fail(c, counters_.resume_failures, why);
}

// ---------------------------------------------------------------- bookkeeping

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
