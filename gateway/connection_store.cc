// Connection, its session-store half (--session-store redis://,
// session_store.h): a new session goes into the store, the echoes of each
// read wait for the store to have their frames ("echo after persist"),
// and a resume the store must decide waits for its answer. Nothing here
// runs with the memory store beyond one test of `session_->stored`.

#include <algorithm>
#include <utility>

#include "gateway/connection.h"

namespace flux {

// FLUX_HELLO. With the store up, FLUX_READY waits until the store has the
// session: a client told READY can resume it on any node.
void Connection::hello() {
  Session& session = ctx_.sessions.create(*this);
  if (!ctx_.sessions.store_new(session, monotonic_ns())) return become_ready(session);
  out_.hold_from_next();
  become_ready(session);
  ++store_requests_;
  ctx_.store->create(*this, view(session.id), session.token, out_.pushed());
}

// FLUX_BYE. With the store, the reply waits until the store has deleted the
// session: a resume elsewhere that took it first makes the delete fail, and
// this connection is then told session-taken-over, not that it ended.
void Connection::handle_bye() {
  if (unstored_frames_ > 0) send_store_batch();  // stored before the session is deleted
  Session& session = *std::exchange(session_, nullptr);
  if (!session.stored) {
    ctx_.sessions.discard(session);
    queue("FLUX_BYE");
    return begin_closing(CloseReason::kBye, std::nullopt);
  }
  out_.hold_from_next();
  queue("FLUX_BYE");
  ++store_requests_;
  ctx_.sessions.discard(session, this, out_.pushed());
  if (state_ == ConnState::kClosed) return;
  begin_closing(CloseReason::kBye, std::nullopt);
}

// The echo about to be queued (and all queued after it) waits for the store.
void Connection::hold_for_store(std::string_view echoed) noexcept {
  if (unstored_frames_++ == 0) out_.hold_from_next();
  if (ctx_.sessions.replay_enabled()) ctx_.store_batch.push_back(echoed);
}

// The data frames of this read join the store's batch for this loop turn
// (copied there: the views in store_batch point at bytes only the queued
// echoes keep alive).
void Connection::send_store_batch() {
  const uint64_t frames = std::exchange(unstored_frames_, 0);
  ++store_requests_;
  Session& session = *session_;
  ctx_.sessions.note_lease_renewed(session, monotonic_ns());  // the append renews it
  ctx_.store->append(*this, view(session.id), session.token, frames, session.replay.count(),
                     ctx_.store_batch, out_.pushed());
  ctx_.store_batch.clear();
}

void Connection::on_store_persisted(uint64_t release_to) {
  --store_requests_;
  if (store_requests_ == 0)
    out_.release_all();
  else
    out_.release_to(release_to);
  after_store_answer();
}

// Not stored in time (or the store is down): the session carries on
// node-local, and what waited is written now.
void Connection::on_store_failed() {
  --store_requests_;
  if (session_ && session_->stored) ctx_.sessions.fall_back(*session_);
  out_.release_all();
  after_store_answer();
}

// The store says this connection no longer holds its session (taken over
// on another node, or expired there): as if the takeover had come before
// the read whose frames it refused. Their echoes, and everything the
// connection queued after them (answers to input it read while the session
// was no longer its own, a BYE's reply, a protocol error), are never sent;
// the client is told session-taken-over instead, also when that later
// input had already begun closing the connection.
void Connection::on_store_lost() {
  --store_requests_;
  if (!store_lost_) {
    store_lost_ = true;
    drop_unstored_echoes();
  }
  if (session_ && session_->stored) {
    const StoreToken token = session_->token;
    ctx_.sessions.release_lost(view(session_->id), token.view());  // calls on_session_taken_over
  }
  takeover_pending_ = true;
  if (state_ != ConnState::kClosing) set_reading(false);  // CLOSING reads on, to see EOF
  after_store_answer();
}

void Connection::drop_unstored_echoes() noexcept {
  const uint64_t before = out_.pending_bytes();
  out_.drop_held();
  ctx_.metrics.traffic.bytes_queued.sub(before - out_.pending_bytes());
  note_queue_change(before);
}

void Connection::after_store_answer() {
  if (state_ == ConnState::kClosed) return;
  if (takeover_pending_ && store_requests_ == 0) {
    takeover_pending_ = false;
    return tell_taken_over();
  }
  flush();
}

void Connection::tell_taken_over() {
  if (state_ != ConnState::kClosing)
    return begin_closing(CloseReason::kTakenOver, ErrorCode::kSessionTakenOver);
  if (store_lost_ && !told_taken_over_) {  // its closing output was dropped: say why now
    queue_error(ErrorCode::kSessionTakenOver);
    close_reason_ = CloseReason::kTakenOver;
  }
  told_taken_over_ = true;
  flush();
}

// Only the store can answer: input waits for it (or for
// --session-store-timeout, then session-unknown).
void Connection::resume_from_store(std::string_view id, uint64_t last_seq) {
  if (!ctx_.store->available()) {
    ctx_.metrics.sessions.resumes_total[static_cast<int>(ResumeResult::kUnknown)].add();
    return refuse_resume(ResumeResult::kUnknown);
  }
  PendingStoreResume pending{{}, last_seq, ctx_.store->next_token()};
  std::copy(id.begin(), id.end(), pending.session_id.begin());
  pending_store_resume_ = pending;
  set_reading(false);
  ctx_.store->resume(*this, id, last_seq, pending.token);
}

void Connection::on_store_resumed(const StoreResume& answer) {
  const PendingStoreResume pending = *pending_store_resume_;
  pending_store_resume_.reset();
  const std::string_view id = view(pending.session_id);
  const bool granted = answer.answered && (answer.result == ResumeResult::kOk ||
                                           answer.result == ResumeResult::kTakenOver);
  if (state_ != ConnState::kHandshake) {
    // Gone meanwhile: what the store granted starts its resume window.
    if (granted) ctx_.store->detach(id, pending.token);
    return;
  }
  const ResumeResult result = answer.answered ? answer.result : ResumeResult::kUnknown;
  ctx_.metrics.sessions.resumes_total[static_cast<int>(result)].add();
  if (!granted) {
    refuse_resume(result);
  } else {
    Session& session = ctx_.sessions.adopt_stored(id, pending.token, answer.seq, pending.last_seq,
                                                  answer.frames, *this);
    resume_into(session, pending.last_seq);
    // Another resume took the session after this one did, and its release
    // (on the node's channel) overtook this answer (on the command link):
    // then nobody held the token to be told. Let go now, as if told after.
    if (ctx_.store->was_released(pending.token.view()))
      ctx_.sessions.release_lost(id, pending.token.view());
  }
  // The input that followed the resume.
  if (!peer_eof_ && !paused_by_backpressure_ && !paused_by_budget_) set_reading(true);
  if (in_block_ && in_begin_ < in_end_) process_input(kMetricsEnabled ? monotonic_ns() : 0);
  if (unstored_frames_ > 0 && session_) send_store_batch();
  if (state_ == ConnState::kClosed) return;
  if (in_block_ && in_begin_ == in_end_) in_block_.reset();
  flush();
}

}  // namespace flux
