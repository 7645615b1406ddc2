#pragma once
// SessionStore: one reactor's view of the session store that lets a
// session outlive its node (--session-store redis://HOST:PORT,
// docs/protocol.md "Session store"). The interface the connections and the
// session table use; RedisSessionStore (redis_session_store.h) is the
// implementation, and the fuzzer drives an in-process stub of it.
//
// With it a session outlives its node: every data frame is in Redis before
// its echo is written ("echo after persist"), so any node can resume the
// session, also after the node that held it was killed. The reactor keeps
// its own copy of what its attached sessions need (seq, replay frames);
// Redis has the truth about who owns a session, decided by Lua scripts
// (gateway/store_scripts.h) that check and write in one step.
//
//   Connection --create/append/resume--> SessionStore --EVALSHA--> Redis
//        ^                                   |   (commands of one loop turn
//        +--- persisted / lost / failed -----+    leave in one write)
//
// Each reactor has two connections of its own on its own event_base (no
// thread, no lock): one for commands, one subscribed to its node's channel
// "flux:node:<node id>", where a node that took a session over tells the
// previous holder to let go. Answers come back in the order commands went
// out, so a FIFO of what each command was for is all the bookkeeping.
//
// Faults: a command unanswered after --session-store-timeout drops the
// connection (all its commands fail: their sessions fall back to
// node-local, their resumes answer session-unknown) and reconnects with
// back-off. While the store is down, new sessions are node-local and
// resumes that need the store answer session-unknown; nothing waits.
//
// Thread contract: the owning reactor thread only.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol_enums.h"
#include "common/store_error.h"
#include "gateway/loop_clock.h"
#include "gateway/options.h"
#include "metrics/reactor_metrics.h"

namespace flux {

// Who holds a session right now, as Redis knows it: a new token for every
// attachment (HELLO, resume), so a holder that lost its session can never
// write to it again, on any node.
struct StoreToken {
  std::array<char, 48> text{};
  uint8_t size = 0;
  std::string_view view() const noexcept { return {text.data(), size}; }
  bool operator==(const StoreToken& other) const noexcept { return view() == other.view(); }
};

// The frames of a resume's answer (valid during on_store_resumed only).
using StoreFrames = std::span<const std::string_view>;

struct StoreResume {
  bool answered = false;  // false: the store failed or timed out (answer session-unknown)
  ResumeResult result = ResumeResult::kUnknown;
  uint64_t seq = 0;
  StoreFrames frames;            // kOk / kTakenOver: the frames after last_seq, in order
  bool from_other_node = false;  // the previous owner was another node
};

// What a connection waiting on the store hears back (exactly once per
// request it made, unless it withdrew with forget()).
class StoreWaiter {
 public:
  // create/append: stored; output queued up to `release_to` may go.
  virtual void on_store_persisted(uint64_t release_to) = 0;
  // create/append: the session is no longer this connection's (taken over
  // or expired in the store): its unpersisted echoes must never be sent.
  virtual void on_store_lost() = 0;
  // create/append: no answer in time, or the store went down.
  virtual void on_store_failed() = 0;
  virtual void on_store_resumed(const StoreResume& answer) = 0;

 protected:
  ~StoreWaiter() = default;
};

class SessionStore {
 public:
  struct Deps {
    event_base* base;
    const Options& options;
    StoreMetrics& metrics;
    LatencyHistogram& round_trip;
    LoopClock& loop_clock;
    unsigned reactor_index;
    // A session of this node was taken over elsewhere (or deleted after a
    // replay gap): its holder, if it still has that token, lets go.
    std::function<void(std::string_view id, std::string_view token)> on_released;
  };

  explicit SessionStore(Deps deps);
  virtual ~SessionStore() = default;
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  // Up and ready: sessions may be stored.
  virtual bool available() const noexcept = 0;
  StoreToken next_token();

  // Requests with an answer. The output a connection queued before
  // `release_to` was pushed waits for it (out_queue.h).
  virtual void create(StoreWaiter& waiter, std::string_view id, const StoreToken& token,
                      uint64_t release_to) = 0;
  // `count` data frames; `payloads` are their bytes when replay is on (else
  // empty); the store then keeps the session's last `keep` frames. Copied
  // into this loop turn's batch, which leaves as one command at the end of
  // the turn (send_turn_batch).
  virtual void append(StoreWaiter& waiter, std::string_view id, const StoreToken& token,
                      uint64_t count, uint64_t keep, std::span<const std::string_view> payloads,
                      uint64_t release_to) = 0;
  // The reactor, after each loop turn (and any command that must stay in
  // order behind the batch): the turn's appends leave.
  virtual void send_turn_batch() = 0;
  virtual void resume(StoreWaiter& waiter, std::string_view id, uint64_t last_seq,
                      const StoreToken& token) = 0;
  // The waiter is going away: its pending answers go nowhere.
  virtual void forget(StoreWaiter& waiter) noexcept = 0;

  // Without an answer: renew an attached session's lease; start a detached
  // one's resume window (0: delete it).
  virtual void renew_lease(std::string_view id, const StoreToken& token) = 0;
  virtual void detach(std::string_view id, const StoreToken& token) = 0;
  // Deletes it if `token` still owns it. FLUX_BYE waits (`waiter`):
  // on_store_persisted(release_to) once it is gone, on_store_lost() if
  // `token` no longer owned it (a resume elsewhere took it first: the BYE's
  // reply must not claim the session ended). A null waiter hears nothing.
  virtual void remove(StoreWaiter* waiter, std::string_view id, const StoreToken& token,
                      uint64_t release_to) = 0;

  // The 100 ms tick: answers overdue past --session-store-timeout fail.
  virtual void on_tick(uint64_t now_ns) = 0;

  // True if a release for `token` was heard already: a resume the store
  // granted to `token`, whose answer came after another resume took the
  // session from it (the answer and the release travel on two connections).
  virtual bool was_released(std::string_view /*token*/) const { return false; }

  // How long an attached session's keys live without renewal, and how
  // often the lease is renewed.
  std::chrono::milliseconds lease() const noexcept;
  static constexpr std::chrono::milliseconds kLeaseRenewEvery{5'000};

 protected:
  Deps deps_;

 private:
  uint64_t boot_nonce_;
  uint64_t token_counter_ = 0;
};

// Makes each reactor's store: the Redis one, unless a harness (the fuzzer)
// puts its own in the ReactorMesh.
using SessionStoreFactory = std::function<std::unique_ptr<SessionStore>(SessionStore::Deps)>;

}  // namespace flux
