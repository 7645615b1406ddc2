// Connection, its ending half: the deadlines (handshake, idle, linger,
// write), CLOSING (flush what is owed, half-close, drain input until the
// peer's EOF or --linger) and the close itself. See connection.h for the
// states; none of this runs on the data path.

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "gateway/connection.h"
#include "gateway/log.h"
#include "gateway/peer_address.h"

namespace flux {

void Connection::shut_down_for_server_exit() {
  begin_closing(CloseReason::kShutdown, ErrorCode::kServerShutdown);
}

void Connection::on_timer() {
  switch (state_) {
    case ConnState::kHandshake:
      if (awaiting_proxy_header_) return refuse_proxy_header(ProxyHeaderError::kTimeout);
      return begin_closing(CloseReason::kHandshakeTimeout, ErrorCode::kHandshakeTimeout);
    case ConnState::kReady:
      return begin_closing(CloseReason::kIdleTimeout, ErrorCode::kIdleTimeout);
    case ConnState::kClosing:
      return close_now(close_reason_);  // linger expired
    default:
      return;
  }
}

// A slow consumer: nothing it was sent has moved for --write-timeout. It is
// not reading, so no error frame would reach it: closed, counted, logged.
void Connection::on_write_timeout() {
  // Spread a burst of expiries over loop turns, so the clients that do read
  // are served between them.
  if (ctx_.slow_closes_this_turn >= kSlowConsumerClosesPerTurn)
    return write_timer_.arm(ctx_.retry_soon);
  ++ctx_.slow_closes_this_turn;
  const std::string peer = format_peer(peer_);
  const auto timeout_ms = static_cast<long long>(ctx_.options.write_timeout.count());
  const auto queued = static_cast<unsigned long long>(out_.pending_bytes());
  log_event(LogLevel::kWarn, "slow-consumer",
            {{"connection", id_},
             {"reactor", std::string_view(ctx_.reactor_label)},
             {"peer", std::string_view(peer)},
             {"write_timeout_seconds", double(timeout_ms) / 1000},
             {"queued_bytes", uint64_t{queued}}},
            "slow consumer: connection %llu on reactor %s (%s) took no output for %lld ms with "
            "%llu bytes queued; closing it",
            static_cast<unsigned long long>(id_), ctx_.reactor_label, peer.c_str(), timeout_ms,
            queued);
  close_reason_ = CloseReason::kSlowConsumer;  // also when it was already closing
  close_now(CloseReason::kSlowConsumer);
}

// CLOSING: input is no longer processed, but it is drained so that the
// peer's EOF is seen and close() does not turn unread bytes into an RST.
void Connection::discard_input() {
  for (unsigned reads = 0; reads < ctx_.options.read_budget; ++reads) {
    ssize_t n = ::read(fd_.get(), ctx_.discard_scratch.data(), ctx_.discard_scratch.size());
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) return close_now(close_reason_);
    return on_peer_eof();
  }
}

void Connection::on_peer_eof() {
  peer_eof_ = true;
  set_reading(false);  // level-triggered EOF would fire forever
  if (state_ == ConnState::kClosing) {
    if (write_side_shut_) close_now(close_reason_);
    return;
  }
  // A half-closed client still gets every echo already owed (flushed in CLOSING).
  begin_closing(CloseReason::kEof, std::nullopt);
}

void Connection::begin_closing(CloseReason reason, std::optional<ErrorCode> error) {
  if (state_ == ConnState::kClosing || state_ == ConnState::kClosed) return;
  if (error) queue_error(*error);
  close_reason_ = reason;
  pending_handoff_.reset();  // a connection that is closing stays and says why
  if (unstored_frames_ > 0 && session_) send_store_batch();
  set_state(ConnState::kClosing);
  in_block_.reset();  // unparsed input will never be processed now
  in_begin_ = in_end_ = 0;
  if (!ctx_.linger.enabled()) {  // --linger 0: one write attempt, then close
    flush();
    if (state_ != ConnState::kClosed) close_now(reason);
    return;
  }
  timer_.arm(ctx_.linger);
  paused_by_backpressure_ = false;
  leave_output_budget_pause();        // input is only drained now, never answered
  if (!peer_eof_) set_reading(true);  // to drain input and see the peer's EOF
  flush();
}

void Connection::finish_closing() {
  if (peer_eof_) return close_now(close_reason_);
  ::shutdown(fd_.get(), SHUT_WR);
  write_side_shut_ = true;
  set_writing(false);
}

void Connection::close_now(CloseReason reason) {
  if (state_ == ConnState::kClosed) return;
  if (state_ == ConnState::kClosing) reason = close_reason_;
  ctx_.metrics.connections.closed_total[static_cast<int>(reason)].add();
  if (unstored_frames_ > 0 && session_) send_store_batch();  // stored before it detaches
  if (session_) ctx_.sessions.detach(*session_);             // ended without BYE: resumable
  session_ = nullptr;
  set_state(ConnState::kClosed);
  stop_io();
  ctx_.metrics.traffic.bytes_queued.sub(out_.pending_bytes());
  ctx_.output_budget.on_queue_change(out_.pending_bytes(), 0);
  out_.clear();
  in_block_.reset();
  fd_.reset();
  owner_.on_connection_closed(*this);
}

}  // namespace flux
