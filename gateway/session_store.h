#pragma once
// SessionStore: one reactor's view of the Redis session store
// (--session-store redis://HOST:PORT, docs/protocol.md "Session store").
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
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol_enums.h"
#include "gateway/loop_clock.h"
#include "gateway/options.h"
#include "gateway/redis_link.h"
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
class StoreFrames {
 public:
  StoreFrames() = default;
  StoreFrames(void* const* items, size_t count) : items_(items), count_(count) {}
  size_t size() const noexcept { return count_; }
  std::string_view operator[](size_t i) const noexcept;

 private:
  void* const* items_ = nullptr;  // redisReply* elements
  size_t count_ = 0;
};

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

class SessionStore final : public RedisLink::Owner {
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
  ~SessionStore();
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  // Up, with its scripts loaded: sessions may be stored.
  bool available() const noexcept { return ready_; }
  StoreToken next_token();

  // Requests with an answer. The output a connection queued before
  // `release_to` was pushed waits for it (out_queue.h).
  void create(StoreWaiter& waiter, std::string_view id, const StoreToken& token,
              uint64_t release_to);
  // `count` data frames; `payloads` are their bytes when replay is on (else
  // empty); the store then keeps the session's last `keep` frames. Copied
  // into this loop turn's batch, which leaves as one command at the end of
  // the turn (send_turn_batch).
  void append(StoreWaiter& waiter, std::string_view id, const StoreToken& token, uint64_t count,
              uint64_t keep, std::span<const std::string_view> payloads, uint64_t release_to);
  // The reactor, after each loop turn (and any command that must stay in
  // order behind the batch): the turn's appends leave.
  void send_turn_batch();
  void resume(StoreWaiter& waiter, std::string_view id, uint64_t last_seq, const StoreToken& token);
  // The waiter is going away: its pending answers go nowhere.
  void forget(StoreWaiter& waiter) noexcept;

  // Without an answer: renew an attached session's lease; start a detached
  // one's resume window (0: delete it); FLUX_BYE deletes it.
  void renew_lease(std::string_view id, const StoreToken& token);
  void detach(std::string_view id, const StoreToken& token);
  void remove(std::string_view id, const StoreToken& token);

  // The 100 ms tick: answers overdue past --session-store-timeout drop the link.
  void on_tick(uint64_t now_ns);

  // How long an attached session's keys live without renewal, and how
  // often the lease is renewed.
  std::chrono::milliseconds lease() const noexcept;
  static constexpr std::chrono::milliseconds kLeaseRenewEvery{5'000};

  void on_link_up(RedisLink& link) override;
  void on_link_down(RedisLink& link, StoreError why) override;

 private:
  enum class Kind : uint8_t { kLoadScript, kCreate, kAppend, kResume, kNoAnswer };
  struct Pending {
    Kind kind;
    StoreWaiter* waiter;  // null: nobody waits (or it withdrew)
    uint64_t release_to;  // kLoadScript: which script; kAppend: how many members
    uint64_t frames;
    uint64_t sent_ns;
  };
  // One session's part of an append batch.
  struct Member {
    StoreWaiter* waiter;
    uint64_t release_to;
    uint64_t frames;
  };
  struct Piece {  // a run of bytes in arena_
    size_t offset;
    size_t size;
  };
  static void on_reply_cb(redisAsyncContext*, void* reply, void* self);
  static void on_event_cb(redisAsyncContext*, void* reply, void* self);
  void on_reply(void* reply);
  void on_script_loaded(unsigned script, void* reply);
  void answer(const Pending& pending, void* reply);
  void answer_batch(uint64_t members, void* reply);
  Piece put(std::string_view bytes);
  void answer_resume(StoreWaiter& waiter, void* reply);
  void on_event(void* reply);
  bool run(unsigned script, std::string_view id, std::span<const std::string_view> args, Kind kind,
           StoreWaiter* waiter, uint64_t release_to, uint64_t frames);
  void keep(std::string_view id, const StoreToken& token, std::chrono::milliseconds ttl,
            std::string_view state);
  void set_ready(bool ready) noexcept;

  Deps deps_;
  std::string channel_;  // this node's pub/sub channel
  RedisLink commands_;
  RedisLink events_;
  std::deque<Pending> pending_;
  std::array<std::string, 4> script_sha_;
  unsigned scripts_loaded_ = 0;
  bool ready_ = false;
  bool stopping_ = false;
  uint64_t boot_nonce_;
  uint64_t token_counter_ = 0;
  // Reused argument arrays: a command's arguments are copied by hiredis.
  std::vector<const char*> argv_;
  std::vector<size_t> argl_;
  // This turn's append batch: its bytes (keys, tokens, numbers, payloads),
  // the KEYS and ARGV pieces, and who waits; then the members of batches
  // sent and not yet answered, in order.
  std::string arena_;
  std::vector<Piece> batch_keys_;
  std::vector<Piece> batch_args_;
  std::vector<Member> batch_members_;
  uint64_t batch_frames_ = 0;
  std::deque<Member> members_in_flight_;
};

}  // namespace flux
