#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "bench/fluxbench/clock.h"
#include "bench/fluxbench/errno_text.h"
#include "bench/fluxbench/handshake.h"
#include "bench/fluxbench/payload.h"
#include "bench/fluxbench/worker.h"

// The worker's sending side: the closed loop's window refill, the open
// loop's schedule (a timer heap of each connection's next due frame), frames
// written in scratch-sized chunks, and the goodbye once nothing is left.

namespace flux::bench {
namespace {

constexpr uint64_t kMaxBatch = 256;           // open loop: frames per connection per turn
constexpr unsigned kMaxTimersPerTurn = 4096;  // then poll again: reads must not starve

bool is_reset(int error) {
  return error == ECONNRESET || error == EPIPE;
}

}  // namespace

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

}  // namespace flux::bench
