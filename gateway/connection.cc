#include "gateway/connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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
  if (store_requests_ > 0 || pending_store_resume_) ctx_.store->forget(*this);
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

// ---------------------------------------------------------------- callbacks

void Connection::on_readable_cb(evutil_socket_t, short, void* self) {
  auto* connection = static_cast<Connection*>(self);
  connection->ctx_.loop_clock.on_callback(Activity::kRead, connection->id_);
  connection->on_readable();
}
void Connection::on_writable_cb(evutil_socket_t, short, void* self) {
  auto* connection = static_cast<Connection*>(self);
  connection->ctx_.loop_clock.on_callback(Activity::kWrite, connection->id_);
  connection->on_writable();
}
void Connection::on_timer_cb(evutil_socket_t, short, void* self) {
  auto* connection = static_cast<Connection*>(self);
  connection->ctx_.loop_clock.on_callback(Activity::kTimer, connection->id_);
  connection->on_timer();
}
void Connection::on_write_timeout_cb(evutil_socket_t, short, void* self) {
  auto* connection = static_cast<Connection*>(self);
  connection->ctx_.loop_clock.on_callback(Activity::kTimer, connection->id_);
  connection->on_write_timeout();
}

// Reads until the socket is drained or the read budget is spent: at most
// --read-budget reads and --read-budget-bytes per wakeup, and nothing once
// the loop turn has read its share (fairness and a bounded turn:
// level-triggered epoll calls us again next turn if bytes remain). Then
// writes every echo produced, in one go.
void Connection::on_readable() {
  if (state_ == ConnState::kClosing) return discard_input();
  if (input_on_hold()) return;  // leaving for the session's reactor, or asking the store
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
    if (unstored_frames_ > 0) send_store_batch();  // one command for the frames of this read
    if (state_ != ConnState::kReady && state_ != ConnState::kHandshake) break;
    if (input_on_hold()) break;
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
  while ((state_ == ConnState::kHandshake || state_ == ConnState::kReady) && !input_on_hold()) {
    if (state_ == ConnState::kReady) {
      const RunTaken run = take_data_run(read_at_ns);
      took |= run.took;
      if (!run.whole_next) break;  // the rest is a partial frame: parsed once, not twice
      if (run.took) continue;
    }
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
    traffic_.last_frame_ns = read_at_ns;
    took = true;
    handle_frame(frame.payload, read_at_ns);
  }
  return took;
}

// Per-frame work would cost per frame what a window of small frames can
// share: the run is kept with one memcpy and echoed as one iovec. A stored
// session (echo after persist) holds each frame on its own, so goes frame
// by frame; so does a control frame, and a frame the replay keeps alone.
Connection::RunTaken Connection::take_data_run(uint64_t read_at_ns) {
  if (session_->stored) return {false, true};
  const std::span<const std::byte> input(in_block_.data() + in_begin_, in_end_ - in_begin_);
  ctx_.sessions.prefetch_evictions(*session_, input.size());
  size_t run_bytes = 0;
  size_t room = 0;
  uint32_t count = 0;
  bool whole_next = true;
  while (true) {
    ParsedFrame frame = parse_frame(input.subspan(run_bytes), ctx_.options.max_frame);
    whole_next = frame.kind != ParsedFrame::kNeedMore;
    if (frame.kind != ParsedFrame::kFrame || is_control(frame.payload)) break;
    if (count == 0) room = ctx_.sessions.run_room(*session_, frame.frame_size);
    if (run_bytes + frame.frame_size > room) break;
    run_bytes += frame.frame_size;
    ++count;
  }
  if (count == 0) return {false, whole_next};
  const std::span<const std::byte> run = input.first(run_bytes);
  in_begin_ += run_bytes;
  ctx_.metrics.traffic.frames_in_total.add(count);
  traffic_.frames_in += count;
  traffic_.last_frame_ns = read_at_ns;
  // With replay on, the echoes are written from the replay copy; off, from the read block.
  ReplayBuffer::Stored kept = ctx_.sessions.record_run(*session_, run, count);
  if (!kept.owner)
    kept = {in_block_.share(), {reinterpret_cast<const char*>(run.data()), run.size()}};
  queue_run(std::move(kept.owner), kept.payload, count, read_at_ns);
  return {true, whole_next};
}

void Connection::handle_frame(std::string_view payload, uint64_t read_at_ns) {
  if (state_ == ConnState::kHandshake)
    handle_handshake(payload);
  else
    handle_ready(payload, read_at_ns);
}

void Connection::handle_ready(std::string_view payload, uint64_t read_at_ns) {
  ReadyRequest request = decode_ready(payload);
  switch (request.kind) {
    case ReadyRequest::kData: {
      ReplayBuffer::Stored kept = ctx_.sessions.record(*session_, payload);
      if (session_->stored) hold_for_store(kept.owner ? kept.payload : payload);
      // With replay on, the echo is written from the replay copy; off, from the read block.
      if (kept.owner) return queue({}, std::move(kept.owner), kept.payload, read_at_ns);
      return queue({}, in_block_.share(), payload, read_at_ns);
    }
    case ReadyRequest::kPing:
      if (!request.ping_has_token) return queue("FLUX_PONG");
      return queue("FLUX_PONG ", in_block_.share(), request.ping_token);
    case ReadyRequest::kBye:
      return handle_bye();
    case ReadyRequest::kAlreadyReady:
      return queue_error(ErrorCode::kAlreadyReady);
    case ReadyRequest::kUnknownCommand:
      return queue_error(ErrorCode::kUnknownCommand);
  }
}

// ------------------------------------------------------------------- output

void Connection::queue(std::string_view text, BlockRef tail_owner, std::string_view tail,
                       uint64_t read_at_ns) {
  const uint64_t before = out_.pending_bytes();
  out_.push(text, std::move(tail_owner), tail, read_at_ns);
  note_pushed(before);
}

void Connection::queue_run(BlockRef owner, std::string_view frames, uint32_t count,
                           uint64_t read_at_ns) {
  const uint64_t before = out_.pending_bytes();
  out_.push_run(std::move(owner), frames, count, read_at_ns);
  note_pushed(before);
}

// The out queue grew from `before` bytes: counted, and told to the budget.
void Connection::note_pushed(uint64_t before) noexcept {
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
  if (paused_since_ns_ == 0) paused_since_ns_ = monotonic_ns();  // a pause is rare: not per frame
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
  if (live && !paused_by_backpressure_ && !peer_eof_ && !input_on_hold()) set_reading(true);
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
    end_pause_if_reading_may_resume();
    if (!peer_eof_ && !input_on_hold() && !paused_by_budget_) set_reading(true);
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
  end_pause_if_reading_may_resume();
  ctx_.output_budget.on_resume();
}

// Both pauses over: the time paused joins the connection's total.
void Connection::end_pause_if_reading_may_resume() noexcept {
  if (paused_since_ns_ == 0 || paused_by_backpressure_ || paused_by_budget_) return;
  traffic_.paused_ns += monotonic_ns() - paused_since_ns_;
  paused_since_ns_ = 0;
}

uint64_t Connection::session_seq() const noexcept {
  return session_ ? session_->seq : 0;
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
