#pragma once
// RedisSessionStore: the session store in Redis (session_store.h says what
// a store does; docs/protocol.md "Session store" what is stored where).
//
//   Connection --create/append/resume--> RedisSessionStore --EVALSHA--> Redis
//        ^                                   |   (commands of one loop turn
//        +--- persisted / lost / failed -----+    leave in one write)
//
// Each reactor has two connections of its own on its own event_base (no
// thread, no lock): one for commands, one subscribed to its node's channel
// "flux:node:<node id>", where a node that took a session over tells the
// previous holder to let go. Answers come back in the order commands went
// out, so a FIFO of what each command was for is all the bookkeeping. The
// Lua scripts (store_scripts.h) check the owner and write in one step.
//
// Faults: a command unanswered after --session-store-timeout drops the
// connection (a link with nothing to say sends PING once per timeout, so an
// idle reactor notices a frozen Redis too) (all its commands fail: their sessions fall back to
// node-local, their resumes answer session-unknown) and reconnects with
// back-off. While the store is down, new sessions are node-local and
// resumes that need the store answer session-unknown; nothing waits.
//
// Thread contract: the owning reactor thread only.

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/redis_link.h"
#include "gateway/session_store.h"

namespace flux {

class RedisSessionStore final : public SessionStore, public RedisLink::Owner {
 public:
  explicit RedisSessionStore(Deps deps);
  ~RedisSessionStore() override;

  // Up, with its scripts loaded.
  bool available() const noexcept override { return ready_; }

  void create(StoreWaiter& waiter, std::string_view id, const StoreToken& token,
              uint64_t release_to) override;
  void append(StoreWaiter& waiter, std::string_view id, const StoreToken& token, uint64_t count,
              uint64_t keep, std::span<const std::string_view> payloads,
              uint64_t release_to) override;
  void send_turn_batch() override;
  void resume(StoreWaiter& waiter, std::string_view id, uint64_t last_seq,
              const StoreToken& token) override;
  void forget(StoreWaiter& waiter) noexcept override;
  void renew_lease(std::string_view id, const StoreToken& token) override;
  void detach(std::string_view id, const StoreToken& token) override;
  void remove(StoreWaiter* waiter, std::string_view id, const StoreToken& token,
              uint64_t release_to) override;
  void on_tick(uint64_t now_ns) override;
  bool was_released(std::string_view token) const override;

  void on_link_up(RedisLink& link) override;
  void on_link_down(RedisLink& link, StoreError why) override;

 private:
  enum class Kind : uint8_t { kLoadScript, kCreate, kAppend, kResume, kRemove, kNoAnswer, kPing };
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
  void note_sent(const Pending& pending);  // queued: await its answer
  void ping();

  std::string channel_;  // this node's pub/sub channel
  RedisLink commands_;
  RedisLink events_;
  std::deque<Pending> pending_;
  uint64_t last_sent_ns_ = 0;  // when the newest command went out
  std::array<std::string, 4> script_sha_;
  unsigned scripts_loaded_ = 0;
  bool ready_ = false;
  bool stopping_ = false;
  std::vector<std::string_view> resume_frames_;  // a resume's answer, as views
  std::deque<std::string> released_tokens_;      // the last releases heard, newest last
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

// The store of --session-store redis://HOST:PORT.
std::unique_ptr<SessionStore> make_redis_store(SessionStore::Deps deps);

}  // namespace flux
