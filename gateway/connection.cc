#include "gateway/connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "gateway/frame_parser.h"
#include "gateway/log.h"
#include "gateway/peer_address.h"

namespace flux {
namespace {

EventPtr make_io_event(event_base* base, int fd, short what, event_callback_fn cb, void* arg) {
  EventPtr ev(event_new(base, fd, what, cb, arg));
  if (!ev) {
    fprintf(stderr, "flux: event_new failed\n");
    std::abort();
  }
  return ev;
}

// Appends the decimal form of n; returns the new end.
char* append_decimal(char* out, char* end, uint64_t n) {
  return std::to_chars(out, end, n).ptr;
}

}  // namespace

Connection::Connection(ReactorContext& context, ConnectionOwner& owner, Fd fd, uint64_t id,
                       const sockaddr_storage& peer)
    : ctx_(context),
      owner_(owner),
      fd_(std::move(fd)),
      id_(id),
      peer_(peer),
      read_event_(make_io_event(ctx_.base, fd_.get(), EV_READ | EV_PERSIST, on_readable_cb, this)),
      write_event_(
          make_io_event(ctx_.base, fd_.get(), EV_WRITE | EV_PERSIST, on_writable_cb, this)),
      timer_(ctx_.base, on_timer_cb, this),
      write_timer_(ctx_.base, on_write_timeout_cb, this),
      out_(ctx_.frame_nodes),
      created_ns_(monotonic_ns()) {
  ctx_.metrics.connections.by_state[static_cast<int>(ConnState::kConnecting)].add();
}

Connection::~Connection() {
  // The owner destroys only closed connections; close_now released it all.
  if (state_ != ConnState::kClosed) close_now(CloseReason::kShutdown);
}

void Connection::start() {
  awaiting_proxy_header_ = ctx_.options.proxy_protocol && !handed_in_;
  set_state(ConnState::kHandshake);
  set_reading(true);
  if (!handed_in_ || !ctx_.handshake_timeout.enabled()) return timer_.arm(ctx_.handshake_timeout);
  // Handed in: the handshake deadline set when the connection was accepted
  // still holds, or a client could renew it by resuming across reactors.
  const auto deadline_ns =
      created_ns_ +
      static_cast<uint64_t>(std::chrono::nanoseconds(ctx_.options.handshake_timeout).count());
  const uint64_t now_ns = monotonic_ns();
  timer_.arm_after(std::chrono::nanoseconds(deadline_ns > now_ns ? deadline_ns - now_ns : 0));
}

void Connection::shut_down_for_server_exit() {
  begin_closing(CloseReason::kShutdown, ErrorCode::kServerShutdown);
}

void Connection::on_session_taken_over() {
  session_ = nullptr;  // the session belongs to the new connection now
  begin_closing(CloseReason::kTakenOver, ErrorCode::kSessionTakenOver);
}

// ---------------------------------------------------------------- callbacks

void Connection::on_readable_cb(evutil_socket_t, short, void* self) {
  auto* connection = static_cast<Connection*>(self);
  connection->ctx_.loop_clock.on_callback();
  connection->on_readable();
}
void Connection::on_writable_cb(evutil_socket_t, short, void* self) {
  auto* connection = static_cast<Connection*>(self);
  connection->ctx_.loop_clock.on_callback();
  connection->on_writable();
}
void Connection::on_timer_cb(evutil_socket_t, short, void* self) {
  auto* connection = static_cast<Connection*>(self);
  connection->ctx_.loop_clock.on_callback();
  connection->on_timer();
}
void Connection::on_write_timeout_cb(evutil_socket_t, short, void* self) {
  auto* connection = static_cast<Connection*>(self);
  connection->ctx_.loop_clock.on_callback();
  connection->on_write_timeout();
}

// Reads until the socket is drained or the read budget is spent: at most
// --read-budget reads and --read-budget-bytes per wakeup, and nothing once
// the loop turn has read its share (fairness and a bounded turn:
// level-triggered epoll calls us again next turn if bytes remain). Then
// writes every echo produced, in one go.
void Connection::on_readable() {
  if (state_ == ConnState::kClosing) return discard_input();
  if (pending_handoff_) return;  // leaving for the session's reactor
  const uint64_t turn_cap = kTurnReadFactor * ctx_.options.read_budget_bytes;
  if (ctx_.read_this_turn >= turn_cap) return;
  uint64_t byte_budget = std::min(ctx_.options.read_budget_bytes, turn_cap - ctx_.read_this_turn);
  bool took_frames = false;
  bool drained = false;  // a short read or EAGAIN: nothing left in the socket
  for (unsigned reads = 0; reads < ctx_.options.read_budget && byte_budget > 0; ++reads) {
    make_read_room();
    const size_t room = std::min<uint64_t>(ctx_.blocks.block_size() - in_end_, byte_budget);
    ssize_t n = ::read(fd_.get(), in_block_.data() + in_end_, room);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      drained = true;
      break;
    }
    if (n < 0) return close_now(CloseReason::kReset);
    if (n == 0) {
      on_peer_eof();
      break;
    }
    in_end_ += static_cast<size_t>(n);
    byte_budget -= static_cast<uint64_t>(n);
    ctx_.read_this_turn += static_cast<uint64_t>(n);
    ctx_.metrics.traffic.bytes_in_total.add(static_cast<uint64_t>(n));
    traffic_.bytes_in += static_cast<uint64_t>(n);
    // The read instant times the echoes (vDSO: no syscall).
    took_frames |= process_input(kMetricsEnabled ? monotonic_ns() : 0);
    if (state_ != ConnState::kReady && state_ != ConnState::kHandshake) break;
    if (pending_handoff_) break;
    if (should_pause_reading()) {
      flush();  // the kernel may take it now; if not, stop reading from this client
      if (state_ == ConnState::kClosed) return;
      if (should_pause_reading()) {
        pause_reading();
        break;
      }
    }
    // A short read emptied the socket buffer: skip the read that would only say EAGAIN.
    if (static_cast<size_t>(n) < room) {
      drained = true;
      break;
    }
  }
  if (state_ == ConnState::kClosed) return;
  if (took_frames && state_ == ConnState::kReady) timer_.arm(ctx_.idle_timeout);
  if (in_begin_ == in_end_) in_block_.reset();  // idle connections hold no buffer
  if (!drained && reading_) requeue_read();
  flush();
}

// Bytes remain after this wakeup's budget: go to the back of the kernel's
// ready list. Level-triggered epoll hands out ready sockets in list order
// and puts each back where it was, so without this the first connections
// in the list would take every turn's read cap and starve those behind
// them (a flood's first seconds: a reader's echo waited 3 s). Only clients
// that send more than a wakeup's budget pay these two epoll_ctl calls.
void Connection::requeue_read() noexcept {
  event_del(read_event_.get());
  event_add(read_event_.get(), nullptr);
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

// -------------------------------------------------------------------- input

// Guarantees free space after in_end_. Every block holds a whole frame, so
// only the bytes of one partial frame ever move.
void Connection::make_read_room() {
  if (!in_block_) {
    in_block_ = ctx_.blocks.acquire();
    in_begin_ = in_end_ = 0;
    return;
  }
  if (in_begin_ == in_end_ && in_block_.unique()) in_begin_ = in_end_ = 0;
  if (in_end_ < ctx_.blocks.block_size()) return;
  const size_t partial = in_end_ - in_begin_;
  if (in_block_.unique()) {
    std::memmove(in_block_.data(), in_block_.data() + in_begin_, partial);
  } else {  // queued echoes still point into this block: leave it to them
    BlockRef fresh = ctx_.blocks.acquire();
    std::memcpy(fresh.data(), in_block_.data() + in_begin_, partial);
    in_block_ = std::move(fresh);
  }
  in_begin_ = 0;
  in_end_ = partial;
}

bool Connection::process_input(uint64_t read_at_ns) {
  bool took = false;
  if (awaiting_proxy_header_ && !take_proxy_header()) return false;
  while ((state_ == ConnState::kHandshake || state_ == ConnState::kReady) && !pending_handoff_) {
    std::span<const std::byte> unparsed(in_block_.data() + in_begin_, in_end_ - in_begin_);
    ParsedFrame frame = parse_frame(unparsed, ctx_.options.max_frame);
    if (frame.kind == ParsedFrame::kNeedMore) break;
    if (frame.kind == ParsedFrame::kTooLarge) {
      begin_closing(CloseReason::kProtocolError, ErrorCode::kFrameTooLarge);
      break;
    }
    in_begin_ += frame.frame_size;
    ctx_.metrics.traffic.frames_in_total.add();
    ++traffic_.frames_in;
    took = true;
    handle_frame(frame.payload, read_at_ns);
  }
  return took;
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

void Connection::handle_frame(std::string_view payload, uint64_t read_at_ns) {
  if (state_ == ConnState::kHandshake)
    handle_handshake(payload);
  else
    handle_ready(payload, read_at_ns);
}

void Connection::handle_handshake(std::string_view payload) {
  HandshakeRequest request = decode_handshake(payload);
  switch (request.kind) {
    case HandshakeRequest::kHello:
      return become_ready(ctx_.sessions.create(*this));
    case HandshakeRequest::kResume:
      return handle_resume(request.session_id, request.last_seq);
    case HandshakeRequest::kBadVersion:
      return begin_closing(CloseReason::kProtocolError, ErrorCode::kUnsupportedVersion);
    case HandshakeRequest::kNotHandshake:
      return begin_closing(CloseReason::kProtocolError, ErrorCode::kHandshakeExpected);
  }
}

// Section 7. After FLUX_INVALID the connection stays in HANDSHAKE and its
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
  if (outcome.elsewhere && may_hand_off)
    return hand_off_when_flushed(*outcome.elsewhere, id, last_seq);
  if (outcome.elsewhere) {
    ctx_.metrics.sessions.resumes_total[static_cast<int>(ResumeResult::kUnknown)].add();
    return refuse_resume(ResumeResult::kUnknown);
  }
  if (outcome.previous) outcome.previous->on_session_taken_over();
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

void Connection::handle_ready(std::string_view payload, uint64_t read_at_ns) {
  ReadyRequest request = decode_ready(payload);
  switch (request.kind) {
    case ReadyRequest::kData: {
      ReplayBuffer::Stored kept = ctx_.sessions.record(*session_, payload);
      // With replay on, the echo is written from the replay copy; off, from the read block.
      if (kept.owner) return queue({}, std::move(kept.owner), kept.payload, read_at_ns);
      return queue({}, in_block_.share(), payload, read_at_ns);
    }
    case ReadyRequest::kPing:
      if (!request.ping_has_token) return queue("FLUX_PONG");
      return queue("FLUX_PONG ", in_block_.share(), request.ping_token);
    case ReadyRequest::kBye:
      ctx_.sessions.discard(*session_);
      session_ = nullptr;
      queue("FLUX_BYE");
      return begin_closing(CloseReason::kBye, std::nullopt);
    case ReadyRequest::kAlreadyReady:
      return queue_error(ErrorCode::kAlreadyReady);
    case ReadyRequest::kUnknownCommand:
      return queue_error(ErrorCode::kUnknownCommand);
  }
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

// ------------------------------------------------------------------- output

void Connection::queue(std::string_view text, BlockRef tail_owner, std::string_view tail,
                       uint64_t read_at_ns) {
  const uint64_t before = out_.pending_bytes();
  out_.push(text, std::move(tail_owner), tail, read_at_ns);
  ctx_.metrics.traffic.bytes_queued.add(out_.pending_bytes() - before);
  note_queue_change(before);
}

void Connection::note_queue_change(uint64_t before) noexcept {
  ctx_.output_budget.on_queue_change(before, out_.pending_bytes());
}

void Connection::queue_error(ErrorCode code) {
  char text[64];
  std::string_view name = to_string(code);
  std::memcpy(text, "FLUX_ERROR ", 11);
  std::memcpy(text + 11, name.data(), name.size());
  ctx_.metrics.traffic.protocol_errors_total[static_cast<int>(code)].add();
  queue(std::string_view(text, 11 + name.size()));
}

bool Connection::over_pending_bound() const noexcept {
  return out_.pending_bytes() > ctx_.options.max_pending;
}

// Its own queue over --max-pending, or among the biggest holders while the
// reactor is over its share of --max-pending-total.
bool Connection::should_pause_reading() const noexcept {
  return over_pending_bound() || ctx_.output_budget.should_pause(out_.pending_bytes());
}

void Connection::pause_reading() {
  if (over_pending_bound()) {
    paused_by_backpressure_ = true;
    ctx_.metrics.traffic.backpressure_pauses_total.add();
  } else if (!paused_by_budget_) {
    paused_by_budget_ = true;
    ctx_.output_budget.on_pause();
  }
  set_reading(false);
}

void Connection::on_output_budget_relieved() noexcept {
  if (!paused_by_budget_) return;
  leave_output_budget_pause();
  const bool live = state_ == ConnState::kHandshake || state_ == ConnState::kReady;
  if (live && !paused_by_backpressure_ && !peer_eof_ && !pending_handoff_) set_reading(true);
}

// The write deadline runs while the kernel refuses output, and restarts
// whenever some of it is taken; output that drains cancels it.
void Connection::track_write_progress(bool blocked, bool progressed) noexcept {
  if (!blocked) {
    if (writing_) write_timer_.cancel();
    return;
  }
  if (!writing_ || progressed) write_timer_.arm(ctx_.write_timeout);
}

// Writes what the kernel takes now; arms EV_WRITE only while it refuses.
void Connection::flush() {
  if (state_ == ConnState::kClosed || write_side_shut_) return;
  FlushTally tally{0, 0, &ctx_.metrics.echo_latency};
  const uint64_t before = out_.pending_bytes();
  OutQueue::Flush result = out_.flush(fd_.get(), tally);
  note_queue_change(before);
  ctx_.metrics.traffic.bytes_out_total.add(tally.bytes);
  ctx_.metrics.traffic.frames_out_total.add(tally.frames);
  ctx_.metrics.traffic.bytes_queued.sub(tally.bytes);
  traffic_.bytes_out += tally.bytes;
  traffic_.frames_out += tally.frames;
  if (result == OutQueue::Flush::kFailed) return close_now(CloseReason::kReset);
  track_write_progress(result == OutQueue::Flush::kBlocked, tally.bytes > 0);
  set_writing(result == OutQueue::Flush::kBlocked);
  if (paused_by_backpressure_ && out_.pending_bytes() <= ctx_.options.max_pending / 2) {
    paused_by_backpressure_ = false;
    if (!peer_eof_ && !pending_handoff_ && !paused_by_budget_) set_reading(true);
  }
  // A holder that wrote its queue down is no longer among the biggest: it
  // reads again even while others keep the reactor over its share.
  if (paused_by_budget_ && !ctx_.output_budget.should_pause(out_.pending_bytes()))
    on_output_budget_relieved();
  if (state_ == ConnState::kClosing && out_.empty()) finish_closing();
  if (pending_handoff_ && out_.empty()) hand_off_now();
}

// ---------------------------------------------------------------- lifecycle

void Connection::set_state(ConnState next) noexcept {
  auto& gauges = ctx_.metrics.connections.by_state;
  gauges[static_cast<int>(state_)].sub();
  if (next != ConnState::kClosed) gauges[static_cast<int>(next)].add();
  state_ = next;
}

void Connection::begin_closing(CloseReason reason, std::optional<ErrorCode> error) {
  if (state_ == ConnState::kClosing || state_ == ConnState::kClosed) return;
  if (error) queue_error(*error);
  close_reason_ = reason;
  pending_handoff_.reset();  // a connection that is closing stays and says why
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
  if (session_) ctx_.sessions.detach(*session_);  // ended without BYE: resumable
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

// No event, no timer, no pause left on this reactor: the connection is
// closed, or its socket is leaving for another reactor.
void Connection::stop_io() noexcept {
  set_reading(false);
  set_writing(false);
  timer_.cancel();
  write_timer_.cancel();
  leave_output_budget_pause();
}

void Connection::leave_output_budget_pause() noexcept {
  if (!paused_by_budget_) return;
  paused_by_budget_ = false;
  ctx_.output_budget.on_resume();
}

void Connection::set_reading(bool on) noexcept {
  if (on == reading_) return;
  reading_ = on;
  if (on)
    event_add(read_event_.get(), nullptr);
  else
    event_del(read_event_.get());
}

void Connection::set_writing(bool on) noexcept {
  if (on == writing_) return;
  writing_ = on;
  if (on)
    event_add(write_event_.get(), nullptr);
  else
    event_del(write_event_.get());
}

}  // namespace flux
