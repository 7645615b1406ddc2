#include "gateway/session_table.h"

#include <algorithm>
#include <cassert>

namespace flux {

Session::Session(SessionTable& owner, const SessionId& session_id, ReplayBuffer::Pools pools,
                 event_base* base, event_callback_fn on_expiry)
    : table(owner), id(session_id), replay(pools), expiry(base, on_expiry, this) {}

SessionTable::~SessionTable() {
  for (auto& [key, session] : sessions_)
    account(-int64_t(session->replay.memory_bytes()), -int64_t(session->replay.frame_bytes()));
}

// A session the store granted: the directory is not asked (the store
// decides who holds it; a racing resume on another reactor loses there).
Session* SessionTable::insert_unclaimed(const SessionId& id, SessionHolder& holder) {
  auto session = std::make_unique<Session>(*this, id, deps_.pools, deps_.base, on_expiry_cb);
  Session& ref = *session;
  const bool inserted = sessions_.emplace(view(ref.id), std::move(session)).second;
  assert(inserted);  // the caller found no session under this id
  (void)inserted;
  ref.holder = &holder;
  deps_.metrics.attached.add();
  return &ref;
}

Session* SessionTable::insert(const SessionId& id, SessionHolder& holder) {
  auto session = std::make_unique<Session>(*this, id, deps_.pools, deps_.base, on_expiry_cb);
  Session& ref = *session;
  if (sessions_.contains(view(ref.id))) return nullptr;
  if (!deps_.directory.claim(view(ref.id), deps_.reactor_index)) return nullptr;
  sessions_.emplace(view(ref.id), std::move(session));
  ref.holder = &holder;
  deps_.metrics.attached.add();
  return &ref;
}

// 128 random bits collide never in practice; if they ever do, the id is
// drawn again rather than two sessions sharing one.
Session& SessionTable::create(SessionHolder& holder) {
  deps_.metrics.created_total.add();
  for (;;)
    if (Session* session = insert(deps_.ids.next(), holder)) return *session;
}

ResumeResult SessionTable::check(const Session& session, uint64_t last_seq) const noexcept {
  if (last_seq > session.seq) return ResumeResult::kBadSeq;
  if (!session.replay.covers(last_seq, session.seq)) return ResumeResult::kReplayGap;
  return session.holder ? ResumeResult::kTakenOver : ResumeResult::kOk;
}

SessionTable::ResumeOutcome SessionTable::resume(std::string_view id, uint64_t last_seq,
                                                 SessionHolder& holder) {
  auto found = sessions_.find(id);
  ResumeOutcome outcome{ResumeResult::kUnknown, nullptr, std::nullopt};
  SessionHolder* previous = nullptr;  // loses the session: told once all is in place
  const bool here = found != sessions_.end() && !found->second->doomed;
  if (here && found->second->stored) {
    outcome.via_store = true;  // the store decides who holds it now
    return outcome;
  }
  if (!here) {
    std::optional<unsigned> owner = deps_.directory.owner(id);
    if (owner && *owner != deps_.reactor_index) {
      outcome.elsewhere = owner;
      return outcome;  // counted by the reactor that completes it
    }
    if (deps_.store) {
      outcome.via_store = true;  // stored, perhaps, by another node or reactor
      return outcome;
    }
    outcome.result = ResumeResult::kUnknown;
  } else if (Session& session = *found->second;
             (outcome.result = check(session, last_seq)) == ResumeResult::kReplayGap) {
    previous = discard_after_gap(session);
  } else if (outcome.result == ResumeResult::kBadSeq) {
    // the session stays as it was
  } else {
    outcome.session = &session;
    previous = session.holder;
    outcome.result = session.holder ? ResumeResult::kTakenOver : ResumeResult::kOk;
    if (session.detached) {
      unlink_detached(session);
      session.expiry.cancel();
      deps_.metrics.detached.sub();
      deps_.metrics.attached.add();
    }
    session.holder = &holder;
  }
  deps_.metrics.resumes_total[static_cast<int>(outcome.result)].add();
  if (previous) previous->on_session_taken_over();
  return outcome;
}

// docs/protocol.md section 8: after a replay gap the session is discarded, since it can never
// be resumed whole again. If a live connection still holds it, that
// holder is returned: it must be told (session-taken-over) and closed, for
// its session is gone (docs/protocol.md, decisions).
SessionHolder* SessionTable::discard_after_gap(Session& session) noexcept {
  SessionHolder* holder = session.holder;
  discard(session);
  return holder;
}

void SessionTable::detach(Session& session) noexcept {
  if (session.detached || session.doomed) return;
  if (session.stored) {
    // The store keeps it for the resume window, for any node to resume.
    deps_.store->detach(view(session.id), session.token);
    return drop_local(session);
  }
  session.holder = nullptr;
  session.detached = true;
  link_detached(session);
  deps_.metrics.attached.sub();
  deps_.metrics.detached.add();
  if (deps_.resume_window.enabled())
    session.expiry.arm(deps_.resume_window);
  else
    discard(session);  // --resume-window 0: nothing to wait for
}

void SessionTable::discard(Session& session, StoreWaiter* bye, uint64_t release_to) noexcept {
  if (session.doomed) return;
  if (session.stored) {
    deps_.store->remove(bye, view(session.id), session.token, release_to);
    leases_.unlink(session);
  }
  session.stored = false;
  session.doomed = true;
  session.expiry.cancel();
  if (session.detached) {
    unlink_detached(session);
    deps_.metrics.detached.sub();
  } else {
    deps_.metrics.attached.sub();
  }
  session.holder = nullptr;
  account(-int64_t(session.replay.memory_bytes()), -int64_t(session.replay.frame_bytes()));
  session.replay.clear();
  doomed_.push_back(&session);
}

void SessionTable::reap() noexcept {
  for (Session* session : doomed_) erase(*session);
  doomed_.clear();
}

void SessionTable::erase(Session& session) noexcept {
  deps_.directory.release(view(session.id), deps_.reactor_index);
  sessions_.erase(view(session.id));
}

template <typename Append>
ReplayBuffer::Stored SessionTable::keep(Session& session, Append append) {
  const uint64_t memory_before = session.replay.memory_bytes();
  const uint64_t frames_before = session.replay.frame_bytes();
  ReplayBuffer::Stored stored = append(session.replay);
  trim_to_bounds(session);
  account(int64_t(session.replay.memory_bytes()) - int64_t(memory_before),
          int64_t(session.replay.frame_bytes()) - int64_t(frames_before));
  enforce_memory_budget(session);
  return stored;
}

ReplayBuffer::Stored SessionTable::record(Session& session, std::string_view payload) {
  const uint64_t seq = ++session.seq;
  if (!replay_enabled()) return {};
  return keep(session, [&](ReplayBuffer& replay) { return replay.append(seq, payload); });
}

ReplayBuffer::Stored SessionTable::record_run(Session& session, std::span<const std::byte> frames,
                                              uint64_t count) {
  const uint64_t first_seq = session.seq + 1;
  session.seq += count;
  if (!replay_enabled()) return {};
  return keep(session,
              [&](ReplayBuffer& replay) { return replay.append_run(first_seq, frames, count); });
}

void SessionTable::trim_to_bounds(Session& session) noexcept {
  const Options& o = deps_.options;
  while (session.replay.count() > o.replay_frames || session.replay.frame_bytes() > o.replay_bytes)
    session.replay.drop_oldest();
}

// Over budget: evict detached sessions, oldest first; then, if still over,
// the writing session gives up its own oldest frames.
void SessionTable::evict_detached_over_budget() noexcept {
  while (memory_bytes_ > deps_.options.replay_memory && detached_.oldest()) {
    deps_.metrics.evicted_total.add();
    discard(*detached_.oldest());
  }
}

void SessionTable::enforce_memory_budget(Session& writing) noexcept {
  evict_detached_over_budget();
  while (memory_bytes_ > deps_.options.replay_memory && writing.replay.count() > 0) {
    const uint64_t memory_before = writing.replay.memory_bytes();
    const uint64_t frames_before = writing.replay.frame_bytes();
    writing.replay.drop_oldest();
    account(int64_t(writing.replay.memory_bytes()) - int64_t(memory_before),
            int64_t(writing.replay.frame_bytes()) - int64_t(frames_before));
  }
}

void SessionTable::on_expiry_cb(evutil_socket_t, short, void* arg) {
  auto* session = static_cast<Session*>(arg);
  SessionTable& table = session->table;
  table.deps_.loop_clock.on_callback(Activity::kSession);
  table.deps_.metrics.expired_total.add();
  table.discard(*session);  // freed later by reap(), not inside its own callback
}

void SessionTable::link_detached(Session& session) noexcept {
  detached_.push_newest(session);
}

void SessionTable::unlink_detached(Session& session) noexcept {
  detached_.unlink(session);
  session.detached = false;
}

// ---------------------------------------------------------- session store

void SessionTable::drop_local(Session& session) noexcept {
  leases_.unlink(session);
  session.stored = false;  // so that discard() leaves the store alone
  discard(session);
}

bool SessionTable::store_new(Session& session, uint64_t now_ns) noexcept {
  if (!deps_.store) return false;
  if (!deps_.store->available()) {
    deps_.store_metrics->fallbacks_total.add();
    return false;
  }
  session.stored = true;
  session.token = deps_.store->next_token();
  note_lease_renewed(session, now_ns);
  return true;
}

Session& SessionTable::adopt_stored(std::string_view id, const StoreToken& token, uint64_t seq,
                                    uint64_t last_seq, const StoreFrames& frames,
                                    SessionHolder& holder) {
  SessionId session_id{};
  std::copy(id.begin(), id.end(), session_id.begin());
  auto found = sessions_.find(id);
  if (found != sessions_.end() && found->second->doomed) {
    // Discarded earlier in this loop turn and not yet reaped: free it now,
    // or the new copy could not take its place under the same id.
    std::erase(doomed_, found->second.get());
    erase(*found->second);
    found = sessions_.end();
  }
  Session* session = nullptr;
  SessionHolder* previous = nullptr;
  if (found != sessions_.end()) {
    session = found->second.get();
    previous = session->holder == &holder ? nullptr : session->holder;
    session->holder = &holder;
  } else {
    session = insert_unclaimed(session_id, holder);
  }
  session->stored = true;
  session->token = token;
  session->seq = seq;
  const uint64_t memory_before = session->replay.memory_bytes();
  const uint64_t frames_before = session->replay.frame_bytes();
  session->replay.clear();
  if (replay_enabled())
    for (size_t i = 0; i < frames.size(); ++i) session->replay.append(last_seq + 1 + i, frames[i]);
  account(int64_t(session->replay.memory_bytes()) - int64_t(memory_before),
          int64_t(session->replay.frame_bytes()) - int64_t(frames_before));
  note_lease_renewed(*session, monotonic_ns());
  if (previous) previous->on_session_taken_over();
  return *session;
}

void SessionTable::fall_back(Session& session) noexcept {
  if (!session.stored) return;
  leases_.unlink(session);
  session.stored = false;
  deps_.store_metrics->fallbacks_total.add();
  // Node-local now: other reactors find it through the directory again.
  (void)deps_.directory.claim(view(session.id), deps_.reactor_index);
}

void SessionTable::release_lost(std::string_view id, std::string_view token) {
  auto found = sessions_.find(id);
  if (found == sessions_.end()) return;
  Session& session = *found->second;
  if (session.doomed || !session.stored || session.token.view() != token) return;
  SessionHolder* holder = session.holder;
  drop_local(session);
  if (holder) holder->on_session_taken_over();
}

void SessionTable::note_lease_renewed(Session& session, uint64_t now_ns) noexcept {
  leases_.unlink(session);
  session.lease_renewed_ns = now_ns;
  leases_.push_newest(session);
}

// Sessions that sent nothing for a while still need their lease: renew the
// ones due, oldest first, a bounded number per tick.
void SessionTable::renew_leases(uint64_t now_ns) {
  constexpr unsigned kMaxPerTick = 4096;
  const auto every_ns =
      static_cast<uint64_t>(std::chrono::nanoseconds(SessionStore::kLeaseRenewEvery).count());
  for (unsigned n = 0; n < kMaxPerTick && leases_.oldest(); ++n) {
    Session& session = *leases_.oldest();
    if (now_ns - session.lease_renewed_ns < every_ns) return;
    deps_.store->renew_lease(view(session.id), session.token);
    note_lease_renewed(session, now_ns);
  }
}

void SessionTable::account(int64_t memory_delta, int64_t frame_bytes_delta) noexcept {
  memory_bytes_ = uint64_t(int64_t(memory_bytes_) + memory_delta);
  deps_.metrics.replay_memory_bytes.set(memory_bytes_);
  deps_.metrics.replay_frame_bytes.set(
      uint64_t(int64_t(deps_.metrics.replay_frame_bytes.get()) + frame_bytes_delta));
}

}  // namespace flux
