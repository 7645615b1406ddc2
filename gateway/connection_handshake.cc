// Connection, its handshake half: the PROXY v2 header, FLUX_HELLO and
// FLUX_RESUME (docs/protocol.md sections 4 and 7), the hand-off of a
// connection whose session another reactor owns (connection_handoff.h), and
// the session events a SessionHolder receives. connection.cc holds the data
// path (read, parse, echo, write), connection_closing.cc the deadlines and
// the close; nothing here runs per frame once a connection is READY.

#include <algorithm>
#include <charconv>
#include <cstring>

#include "gateway/connection.h"
#include "gateway/frame_parser.h"

namespace flux {
namespace {

// Appends the decimal form of n; returns the new end.
char* append_decimal(char* out, char* end, uint64_t n) {
  return std::to_chars(out, end, n).ptr;
}

}  // namespace

// SessionHolder: the SessionTable gave the session to another connection
// (or discarded it after a replay gap).
void Connection::on_session_taken_over() {
  session_ = nullptr;  // the session belongs to the new connection now
  unstored_frames_ = 0;
  ctx_.store_batch.clear();
  // Session store: echoes still waiting for it go out first if it stored
  // their frames (the new holder's seq counts them), and never if it refused
  // them; the error follows once every answer is in.
  if (store_requests_ > 0) {
    takeover_pending_ = true;
    if (state_ != ConnState::kClosing) set_reading(false);  // CLOSING reads on, to see EOF
    return;
  }
  tell_taken_over();
}

// The PROXY v2 header comes before any Flux byte; the client it names
// becomes this connection's peer (in /connections and the logs).
bool Connection::take_proxy_header() {
  std::span<const std::byte> unparsed(in_block_.data() + in_begin_, in_end_ - in_begin_);
  const ProxyHeader header = parse_proxy_header(unparsed);
  if (header.kind == ProxyHeader::kNeedMore) return false;
  if (header.kind == ProxyHeader::kError) {
    refuse_proxy_header(header.error);
    return false;
  }
  in_begin_ += header.size;
  if (header.has_address) peer_ = header.source;
  awaiting_proxy_header_ = false;
  return true;
}

// No reply: whoever sent this is not a client speaking through the
// balancer, and nothing it could read would help it.
void Connection::refuse_proxy_header(ProxyHeaderError error) {
  ctx_.metrics.connections.proxy_header_errors_total[static_cast<int>(error)].add();
  close_now(error == ProxyHeaderError::kTimeout ? CloseReason::kHandshakeTimeout
                                                : CloseReason::kProtocolError);
}

void Connection::handle_handshake(std::string_view payload) {
  HandshakeRequest request = decode_handshake(payload);
  switch (request.kind) {
    case HandshakeRequest::kHello:
      return hello();
    case HandshakeRequest::kResume:
      return handle_resume(request.session_id, request.last_seq);
    case HandshakeRequest::kBadVersion:
      return begin_closing(CloseReason::kProtocolError, ErrorCode::kUnsupportedVersion);
    case HandshakeRequest::kNotHandshake:
      return begin_closing(CloseReason::kProtocolError, ErrorCode::kHandshakeExpected);
  }
}

// docs/protocol.md section 8. After FLUX_INVALID the connection stays in HANDSHAKE and its
// handshake timer runs on.
void Connection::handle_resume(std::string_view id, uint64_t last_seq, bool may_hand_off) {
  if (!is_well_formed_session_id(id)) {
    ctx_.metrics.sessions.resumes_total[static_cast<int>(ResumeResult::kUnknown)].add();
    return queue("FLUX_INVALID session-unknown");
  }
  SessionTable::ResumeOutcome outcome = ctx_.sessions.resume(id, last_seq, *this);
  // Another reactor owns the session: go there. The resume a connection was
  // handed in with is answered here (sessions never move, so the directory
  // cannot send it on again); a later one, after FLUX_INVALID, may name a
  // session of any reactor, as on one reactor.
  if (outcome.via_store) return resume_from_store(id, last_seq);
  if (outcome.elsewhere && may_hand_off)
    return hand_off_when_flushed(*outcome.elsewhere, id, last_seq);
  if (outcome.elsewhere) {
    ctx_.metrics.sessions.resumes_total[static_cast<int>(ResumeResult::kUnknown)].add();
    return refuse_resume(ResumeResult::kUnknown);
  }
  if (outcome.session) return resume_into(*outcome.session, last_seq);
  refuse_resume(outcome.result);
}

void Connection::refuse_resume(ResumeResult result) {
  switch (result) {
    case ResumeResult::kBadSeq:
      return queue("FLUX_INVALID bad-seq");
    case ResumeResult::kReplayGap:
      return queue("FLUX_INVALID replay-gap");
    default:
      return queue("FLUX_INVALID session-unknown");
  }
}

// READY, then the frames the client missed, from the replay buffer's own bytes.
void Connection::resume_into(Session& session, uint64_t last_seq) {
  become_ready(session);
  uint64_t replayed = 0;
  session.replay.for_each_after(last_seq, [&](ReplayBuffer::Stored frame) {
    queue({}, std::move(frame.owner), frame.payload);
    ++replayed;
  });
  ctx_.metrics.sessions.frames_replayed_total.add(replayed);
}

// Input stops here; what the client is owed (FLUX_INVALID answers to
// earlier resumes) is written first, so that its answers stay in order.
void Connection::hand_off_when_flushed(unsigned owner, std::string_view id, uint64_t last_seq) {
  PendingHandoff pending{owner, {}, last_seq};
  std::copy(id.begin(), id.end(), pending.session_id.begin());
  pending_handoff_ = pending;
  set_reading(false);
  // flush() (at the end of this wakeup, or on EV_WRITE) hands off once drained.
}

// The socket leaves for the owner reactor; here the connection ends without
// counting a close (it goes on there) and without touching the socket again.
void Connection::hand_off_now() {
  const PendingHandoff pending = *pending_handoff_;
  pending_handoff_.reset();
  stop_io();  // off this event_base before the owner's takes the socket
  ConnectionHandoff handoff{std::move(fd_),   peer_, created_ns_, traffic_, pending.session_id,
                            pending.last_seq, {}};
  if (in_block_)
    handoff.unparsed_input.assign(reinterpret_cast<const char*>(in_block_.data()) + in_begin_,
                                  in_end_ - in_begin_);
  in_block_.reset();
  in_begin_ = in_end_ = 0;
  handed_off_ = true;
  set_state(ConnState::kClosed);
  ctx_.router.hand_off(pending.owner, std::move(handoff));
  owner_.on_connection_closed(*this);
}

void Connection::start_handed_over_into_shutdown(ConnectionHandoff handoff) {
  handed_in_ = true;
  created_ns_ = handoff.created_ns;
  traffic_ = handoff.traffic;
  start();
  shut_down_for_server_exit();
}

void Connection::start_handed_over(ConnectionHandoff handoff) {
  handed_in_ = true;
  created_ns_ = handoff.created_ns;
  traffic_ = handoff.traffic;
  start();
  if (!handoff.unparsed_input.empty()) {
    in_block_ = ctx_.blocks.acquire();  // same size as the sender's: it fits
    std::memcpy(in_block_.data(), handoff.unparsed_input.data(), handoff.unparsed_input.size());
    in_begin_ = 0;
    in_end_ = handoff.unparsed_input.size();
  }
  handle_resume(view(handoff.session_id), handoff.last_seq, /*may_hand_off=*/false);
  if (in_block_) process_input(kMetricsEnabled ? monotonic_ns() : 0);
  if (state_ == ConnState::kClosed) return;
  if (in_begin_ == in_end_) in_block_.reset();
  flush();
}

// FLUX_READY <id> <seq>, then READY with the idle timer.
void Connection::become_ready(Session& session) {
  session_ = &session;
  char text[OutFrame::kHeadCapacity - kFrameHeaderSize];
  char* end = text + sizeof text;
  char* p = std::copy_n("FLUX_READY ", 11, text);
  p = std::copy(session.id.begin(), session.id.end(), p);
  *p++ = ' ';
  p = append_decimal(p, end, session.seq);
  queue(std::string_view(text, static_cast<size_t>(p - text)));
  set_state(ConnState::kReady);
  timer_.arm(ctx_.idle_timeout);
}

}  // namespace flux
