#include "gateway/redis_link.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <utility>

#include "gateway/log.h"

namespace flux {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5'000};

RedisLink* link_of(const redisAsyncContext* ac) {
  return static_cast<RedisLink*>(ac->data);
}

}  // namespace

RedisLink::RedisLink(event_base* base, std::string host, uint16_t port,
                     std::chrono::milliseconds connect_timeout, Owner& owner)
    : base_(base),
      host_(std::move(host)),
      port_(port),
      connect_timeout_(connect_timeout),
      owner_(owner),
      backoff_(kFirstBackoff),
      timer_(evtimer_new(base, on_timer_cb, this)) {}

RedisLink::~RedisLink() {
  stop();
}

void RedisLink::stop() {
  stopping_ = true;
  event_del(timer_.get());
  if (redisAsyncContext* ac = std::exchange(context_, nullptr)) {
    ac->data = nullptr;  // its callbacks no longer reach this object
    state_ = State::kDown;
    redisAsyncFree(ac);  // pending commands get their null replies now
  }
}

void RedisLink::start() {
  if (state_ == State::kDown && !context_) connect();
}

void RedisLink::connect() {
  redisAsyncContext* ac = redisAsyncConnect(host_.c_str(), port_);
  if (!ac) return went_down(StoreError::kConnect);
  if (ac->err) {
    redisAsyncFree(ac);
    return went_down(StoreError::kConnect);
  }
  ac->data = this;
  if (redisLibeventAttach(ac, base_) != REDIS_OK) {
    redisAsyncFree(ac);
    return went_down(StoreError::kConnect);
  }
  redisAsyncSetConnectCallback(ac, on_connected_cb);
  redisAsyncSetDisconnectCallback(ac, on_disconnected_cb);
  context_ = ac;
  state_ = State::kConnecting;
  arm_timer(connect_timeout_);  // a host that never answers must not hold us
}

void RedisLink::on_connected_cb(const redisAsyncContext* ac, int status) {
  RedisLink* link = link_of(ac);
  if (!link) return;
  if (status != REDIS_OK) {
    link->context_ = nullptr;  // hiredis frees a context that failed to connect
    return link->went_down(StoreError::kConnect);
  }
  event_del(link->timer_.get());
  link->state_ = State::kUp;
  log_event(LogLevel::kInfo, "session-store-up", {{"port", uint64_t{link->port_}}},
            "session store: connected to redis://%s:%u", link->host_.c_str(), link->port_);
  link->owner_.on_link_up(*link);
}

void RedisLink::answered() noexcept {
  backoff_ = kFirstBackoff;
}

void RedisLink::on_disconnected_cb(const redisAsyncContext* ac, int) {
  RedisLink* link = link_of(ac);
  if (!link) return;
  link->context_ = nullptr;  // hiredis frees it after this callback
  link->went_down(StoreError::kDisconnect);
}

void RedisLink::drop(StoreError why) {
  redisAsyncContext* ac = std::exchange(context_, nullptr);
  if (!ac) return;
  ac->data = nullptr;
  const bool was_up = state_ == State::kUp;
  state_ = State::kDown;  // so that no command is sent while the pending ones fail
  redisAsyncFree(ac);     // deferred by hiredis when called from one of its callbacks
  went_down(why, was_up);
}

void RedisLink::went_down(StoreError why) {
  went_down(why, state_ == State::kUp);
}

void RedisLink::went_down(StoreError why, bool was_up) {
  state_ = State::kDown;
  if (stopping_) return;
  if (was_up || why != StoreError::kConnect || backoff_ == kFirstBackoff)
    log_event(LogLevel::kWarn, "session-store-down", {{"reason", to_string(why)}},
              "session store: redis://%s:%u %s (%s); retrying in %lld ms", host_.c_str(), port_,
              was_up ? "lost" : "unreachable", to_string(why).data(),
              static_cast<long long>(backoff_.count()));
  owner_.on_link_down(*this, why);
  schedule_reconnect();
}

void RedisLink::schedule_reconnect() {
  arm_timer(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void RedisLink::arm_timer(std::chrono::milliseconds delay) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(delay).count();
  timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
  evtimer_add(timer_.get(), &tv);
}

void RedisLink::on_timer_cb(evutil_socket_t, short, void* self) {
  auto* link = static_cast<RedisLink*>(self);
  if (link->state_ == State::kConnecting) return link->drop(StoreError::kConnect);
  if (link->state_ == State::kDown && !link->context_) link->connect();
}

bool RedisLink::send(int argc, const char** argv, const size_t* lengths, ReplyFn on_reply,
                     void* context) {
  if (state_ != State::kUp || !context_) return false;
  return redisAsyncCommandArgv(context_, on_reply, context, argc, argv, lengths) == REDIS_OK;
}

}  // namespace flux
