#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "bench/fluxbench/clock.h"
#include "bench/fluxbench/errno_text.h"
#include "bench/fluxbench/handshake.h"
#include "bench/fluxbench/payload.h"
#include "bench/fluxbench/worker.h"

// The worker's receiving side: epoll events, connect completions, reads
// (every echo checked against what was sent, latency recorded, the window
// refilled) and flushing what the kernel refused earlier.

namespace flux::bench {
namespace {

constexpr int kReadsPerEvent = 4;  // then give the other connections a turn
constexpr int kMaxEvents = 512;

}  // namespace

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
        resume_closed(c, "resume: closed by the server");
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
        resume_closed(c, "resume: " + errno_text(error));
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

}  // namespace flux::bench
