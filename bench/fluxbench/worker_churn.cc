#include <sys/socket.h>

#include <algorithm>
#include <string>

#include "bench/fluxbench/clock.h"
#include "bench/fluxbench/connector.h"
#include "bench/fluxbench/errno_text.h"
#include "bench/fluxbench/handshake.h"
#include "bench/fluxbench/payload.h"
#include "bench/fluxbench/worker.h"

// --churn (churn.h): the worker drops its share of connections with an RST,
// reconnects from the same source address, resumes with FLUX_RESUME and
// sends again what the server never read; each resume's latency and failure
// is counted.

namespace flux::bench {

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

// The connection a resume went out on was closed unanswered: its node died
// under it, or the balancer in front gave up on a node that had just died.
// A real client tries again; so does fluxbench with --resume-on-close, a
// few times, timing the resume from the first drop.
void Worker::resume_closed(Connection& c, const std::string& why) {
  if (!options_.resume_on_close || c.resume_retries >= kResumeRetries) return resume_failed(c, why);
  ++c.resume_retries;
  counters_.resume_retries.add();
  const uint64_t dropped = c.dropped_ns;
  reconnect(c, mono_ns());
  c.dropped_ns = dropped;
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
  watch_connect(c, index);
  if (std::find(resuming_.begin(), resuming_.end(), index) == resuming_.end())
    resuming_.push_back(index);  // a resume tried again is there already
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
  c.resume_retries = 0;
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

}  // namespace flux::bench
