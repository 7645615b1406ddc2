#pragma once
// Sessions (protocol sections 6 and 7): a session outlives its connection,
// counts `seq` across reconnections and keeps a replay buffer, so that a
// client whose connection dropped resumes and receives exactly what it
// missed.
//
//   HELLO ──create──> attached ──connection lost (no BYE)──> detached
//                        ^                                     |  resume-window timer
//                        +──────────── FLUX_RESUME ────────────+──> expired
//   BYE, replay-gap, expiry, eviction ──> discarded
//
// Memory is bounded three ways: --replay-frames and --replay-bytes per
// session, and --replay-memory for the reactor. Over the reactor budget,
// detached sessions are evicted oldest first; if none is left, the session
// being written to drops its own oldest frames (a later resume of it may
// then get replay-gap: the bound is kept, and nothing is silently wrong).
//
// Thread contract: the owning reactor thread only.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/buffer_pool.h"
#include "gateway/intrusive_list.h"
#include "gateway/libevent_ptr.h"
#include "gateway/loop_clock.h"
#include "gateway/options.h"
#include "gateway/protocol.h"
#include "gateway/replay_buffer.h"
#include "gateway/session_directory.h"
#include "gateway/session_holder.h"
#include "gateway/session_id.h"
#include "gateway/session_store.h"
#include "gateway/timer.h"
#include "metrics/reactor_metrics.h"

namespace flux {

class SessionTable;

struct Session {
  Session(SessionTable& owner, const SessionId& session_id, ReplayBuffer::Pools pools,
          event_base* base, event_callback_fn on_expiry);

  SessionTable& table;
  const SessionId id;
  uint64_t seq = 0;  // data frames sent in this session, across connections
  ReplayBuffer replay;
  SessionHolder* holder = nullptr;  // the connection it is attached to, if any
  Timer expiry;                     // armed while detached
  // The detached list, oldest first (intrusive: O(1) unlink on resume).
  Session* older = nullptr;
  Session* newer = nullptr;
  bool detached = false;
  bool doomed = false;  // discarded from a callback; freed by reap()
  // --session-store redis://: the session is in the store, held there by
  // `token`; its lease is renewed oldest first (the lease list). False for
  // every session of the memory store, and for one that fell back to
  // node-local when the store could not keep up.
  bool stored = false;
  StoreToken token;
  uint64_t lease_renewed_ns = 0;
  Session* lease_older = nullptr;
  Session* lease_newer = nullptr;
};

class SessionTable {
 public:
  struct Deps {
    event_base* base;
    const Options& options;
    SessionMetrics& metrics;
    ReplayBuffer::Pools pools;
    SessionIdGenerator& ids;
    const CommonTimeout& resume_window;
    LoopClock& loop_clock;
    SessionDirectory& directory;  // the mesh's: shared by a reactor group, or a mesh of one
    unsigned reactor_index = 0;
    SessionStore* store = nullptr;          // --session-store redis://; null for memory
    StoreMetrics* store_metrics = nullptr;  // with a store: its fallbacks are counted here
  };
  struct ResumeOutcome {
    ResumeResult result;
    Session* session = nullptr;  // kOk / kTakenOver: now attached to the caller
    // Not here but owned by another reactor of the group: the connection
    // goes there (result unset, nothing counted here).
    std::optional<unsigned> elsewhere;
    // Only the session store can answer (the session is stored, or not
    // known on this node): the caller asks it (nothing counted here).
    bool via_store = false;
  };

  explicit SessionTable(Deps deps) : deps_(deps) {}
  ~SessionTable();
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  // FLUX_HELLO: a new session, attached to `holder`. Its id is claimed
  // in the directory for the group, so no two reactors ever hold one id;
  // the session stays on this reactor until it ends.
  Session& create(SessionHolder& holder);
  // FLUX_RESUME: see the table of docs/protocol.md section 8. On kTakenOver, and on
  // kReplayGap for a session still attached, the holder that had the
  // session is told (SessionHolder::on_session_taken_over) before this
  // returns: the table alone keeps the two sides in step.
  ResumeOutcome resume(std::string_view id, uint64_t last_seq, SessionHolder& holder);
  // The connection ended without FLUX_BYE: keep the session for the resume window.
  void detach(Session& session) noexcept;
  // FLUX_BYE (or any end of the session): free it now (in the store too;
  // for a BYE, `bye` is told when the store has deleted it, release_to as
  // SessionStore::remove says).
  void discard(Session& session, StoreWaiter* bye = nullptr, uint64_t release_to = 0) noexcept;

  // --session-store redis:// (session_store.h). A new session goes into the
  // store when the store is up (else it is node-local: a fallback).
  bool store_new(Session& session, uint64_t now_ns) noexcept;
  // A resume the store granted: the session, attached to `holder`, with
  // seq `seq`, `token` and the frames after `last_seq`. A copy of it here
  // is reused (its previous holder is told, as in resume()).
  Session& adopt_stored(std::string_view id, const StoreToken& token, uint64_t seq,
                        uint64_t last_seq, const StoreFrames& frames, SessionHolder& holder);
  // The store could not keep up: the session carries on node-local.
  void fall_back(Session& session) noexcept;
  // The store says `token` lost session `id` (taken over elsewhere, or
  // deleted after a replay gap): its holder here lets go.
  void release_lost(std::string_view id, std::string_view token);
  // The session's lease was renewed (by an append) / renew the oldest due (the tick).
  void note_lease_renewed(Session& session, uint64_t now_ns) noexcept;
  void renew_leases(uint64_t now_ns);

  // Counts the next data frame of the session and, when replay is on, keeps
  // a copy; returns what the echo should point at (empty owner: replay off,
  // write the caller's own bytes).
  ReplayBuffer::Stored record(Session& session, std::string_view payload);
  // The same for `count` data frames read together, given whole in their
  // wire form; the echo of all of them points at what it returns. They must
  // fit in run_room(the first frame's size).
  ReplayBuffer::Stored record_run(Session& session, std::span<const std::byte> frames,
                                  uint64_t count);
  // A run of about `bytes` is coming: the frames it will push out start
  // loading now (ReplayBuffer::prefetch_oldest), while the run is parsed.
  void prefetch_evictions(const Session& session, size_t bytes) const noexcept {
    if (replay_enabled() && session.replay.count() >= deps_.options.replay_frames)
      session.replay.prefetch_oldest(bytes);
  }
  // Bytes of frames that record_run can keep in one piece (unbounded with
  // replay off; 0 if the first frame must go alone).
  size_t run_room(const Session& session, size_t first_frame) const noexcept {
    return replay_enabled() ? session.replay.room_for_run(first_frame) : SIZE_MAX;
  }
  bool replay_enabled() const noexcept {
    return deps_.options.replay_frames > 0 && deps_.options.replay_bytes > 0;
  }

  // Frees sessions discarded from inside their own timer callback.
  void reap() noexcept;
  size_t size() const noexcept { return sessions_.size(); }

 private:
  static void on_expiry_cb(evutil_socket_t, short, void* session);
  // Runs `append` (a ReplayBuffer call) and then keeps the session and the
  // table within their bounds and accounts.
  template <typename Append>
  ReplayBuffer::Stored keep(Session& session, Append append);
  void trim_to_bounds(Session& session) noexcept;
  void enforce_memory_budget(Session& writing) noexcept;
  void evict_detached_over_budget() noexcept;
  SessionHolder* discard_after_gap(Session& session) noexcept;
  void link_detached(Session& session) noexcept;
  // Forgets a stored session here only (its holder let go of it).
  void drop_local(Session& session) noexcept;
  void unlink_detached(Session& session) noexcept;
  void account(int64_t memory_delta, int64_t frame_bytes_delta) noexcept;
  void erase(Session& session) noexcept;
  // Null if the id is taken here or, in a group, by another reactor.
  Session* insert(const SessionId& id, SessionHolder& holder);
  Session* insert_unclaimed(const SessionId& id, SessionHolder& holder);
  ResumeResult check(const Session& session, uint64_t last_seq) const noexcept;

  Deps deps_;
  std::unordered_map<std::string_view, std::unique_ptr<Session>>
      sessions_;                                                       // keys view Session::id
  IntrusiveList<Session, &Session::older, &Session::newer> detached_;  // oldest first
  // Stored sessions, least recently renewed first.
  IntrusiveList<Session, &Session::lease_older, &Session::lease_newer> leases_;
  std::vector<Session*> doomed_;
  uint64_t memory_bytes_ = 0;
};

}  // namespace flux
