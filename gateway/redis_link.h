#pragma once
// RedisLink: one asynchronous connection to Redis, on a reactor's own
// event_base (hiredis and its libevent adapter). Nothing here blocks:
// connecting, writing and reading are all events of the reactor's loop,
// and commands issued in one loop turn leave together in one write when
// the socket next becomes writable (pipelining for free).
//
//   down --connect()--> connecting --connected--> up
//    ^                      |                      |
//    +--- back-off timer ---+--- failed / lost ----+
//
// The link reconnects by itself, with a back-off that starts at 100 ms and
// doubles up to 5 s, and tells its owner each time it comes up or goes
// down. The back-off starts over only when the owner says Redis answered
// (answered()): a connect alone proves little, since the kernel of a frozen
// redis-server still accepts. Every command sent gets exactly one answer through its callback: a
// reply, or a null reply when the link went down first.
//
// Thread contract: the reactor thread only.

#include <event2/event.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/store_error.h"
#include "gateway/libevent_ptr.h"

struct redisAsyncContext;
struct redisReply;

namespace flux {

class RedisLink {
 public:
  class Owner {
   public:
    // Connected: commands may be sent.
    virtual void on_link_up(RedisLink& link) = 0;
    // Failed to connect, lost, or dropped; every command pending gets (or
    // got) a null reply. A reconnect is scheduled.
    virtual void on_link_down(RedisLink& link, StoreError why) = 0;

   protected:
    ~Owner() = default;
  };
  // hiredis's callback: `reply` (a redisReply*) is null when the link went
  // down before an answer came; `context` is what send() was given.
  using ReplyFn = void (*)(redisAsyncContext* ac, void* reply, void* context);

  RedisLink(event_base* base, std::string host, uint16_t port,
            std::chrono::milliseconds connect_timeout, Owner& owner);
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // Starts connecting (the first time; later attempts follow by themselves).
  void start();
  // Abandons the connection (e.g. it stopped answering): pending commands
  // get null replies, the owner hears on_link_down(why), a reconnect follows.
  void drop(StoreError why);

  // For good (the owner is going away): pending commands get their null
  // replies now, and no reconnect follows.
  void stop();

  // Redis answered on this link: the next loss retries after 100 ms again.
  void answered() noexcept;

  bool up() const noexcept { return state_ == State::kUp; }
  // Queues one command (binary-safe arguments). False if the link is not up;
  // then `on_reply` is never called.
  bool send(int argc, const char** argv, const size_t* lengths, ReplyFn on_reply, void* context);

 private:
  enum class State : uint8_t { kDown, kConnecting, kUp };
  static void on_connected_cb(const redisAsyncContext* ac, int status);
  static void on_disconnected_cb(const redisAsyncContext* ac, int status);
  static void on_timer_cb(evutil_socket_t, short, void* self);
  void connect();
  void went_down(StoreError why);
  void went_down(StoreError why, bool was_up);
  void schedule_reconnect();
  void arm_timer(std::chrono::milliseconds delay);

  event_base* base_;
  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds connect_timeout_;
  Owner& owner_;
  redisAsyncContext* context_ = nullptr;  // owned by hiredis once connecting
  State state_ = State::kDown;
  std::chrono::milliseconds backoff_;
  EventPtr timer_;  // connect deadline while connecting, reconnect while down
  bool stopping_ = false;
};

}  // namespace flux
