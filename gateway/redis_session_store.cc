#include "gateway/redis_session_store.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>

#include "common/monotonic_clock.h"
#include "gateway/log.h"
#include "gateway/store_scripts.h"

namespace flux {
namespace {

using std::chrono::milliseconds;

// The session's two keys (store_scripts.h).
struct Keys {
  explicit Keys(std::string_view id) {
    hash.append("flux:s:").append(id);
    list.append("flux:f:").append(id);
  }
  std::string hash;
  std::string list;
};

// Decimal text of a number, on the stack.
struct Decimal {
  explicit Decimal(uint64_t n)
      : size(size_t(std::to_chars(text, text + sizeof text, n).ptr - text)) {}
  std::string_view view() const { return {text, size}; }
  char text[24];
  size_t size;
};

const redisReply* as_reply(void* reply) {
  return static_cast<const redisReply*>(reply);
}

bool is_error(void* reply) {
  return reply && as_reply(reply)->type == REDIS_REPLY_ERROR;
}

}  // namespace

RedisSessionStore::RedisSessionStore(Deps deps)
    : SessionStore(std::move(deps)),
      channel_("flux:node:" + std::to_string(deps_.options.node_id)),
      commands_(deps_.base, deps_.options.session_store.host, deps_.options.session_store.port,
                deps_.options.session_store_timeout, *this),
      events_(deps_.base, deps_.options.session_store.host, deps_.options.session_store.port,
              deps_.options.session_store_timeout, *this) {
  commands_.start();
  events_.start();
}

RedisSessionStore::~RedisSessionStore() {
  // Stopping the links answers what is pending with null replies, while this
  // object is still whole; nobody is left to hear them.
  for (Pending& pending : pending_) pending.waiter = nullptr;
  for (Member& member : members_in_flight_) member.waiter = nullptr;
  batch_members_.clear();
  stopping_ = true;
  commands_.stop();
  events_.stop();
}

// ------------------------------------------------------------------ link

void RedisSessionStore::on_link_up(RedisLink& link) {
  if (&link == &events_) {
    const char* argv[] = {"SUBSCRIBE", channel_.c_str()};
    const size_t argl[] = {9, channel_.size()};
    events_.send(2, argv, argl, on_event_cb, this);
    return;
  }
  scripts_loaded_ = 0;
  for (unsigned i = 0; i < store_scripts::kScriptCount; ++i) {
    const std::string_view body = store_scripts::kScripts[i];
    const char* argv[] = {"SCRIPT", "LOAD", body.data()};
    const size_t argl[] = {6, 4, body.size()};
    if (commands_.send(3, argv, argl, on_reply_cb, this))
      note_sent({Kind::kLoadScript, nullptr, i, 0, monotonic_ns()});
  }
}

void RedisSessionStore::on_link_down(RedisLink& link, StoreError why) {
  deps_.metrics.errors_total[static_cast<int>(why)].add();
  if (&link == &commands_) set_ready(false);
}

void RedisSessionStore::set_ready(bool ready) noexcept {
  ready_ = ready;
  deps_.metrics.connected.set(ready ? 1 : 0);
}

void RedisSessionStore::on_tick(uint64_t now_ns) {
  const auto timeout_ns =
      static_cast<uint64_t>(std::chrono::nanoseconds(deps_.options.session_store_timeout).count());
  if (pending_.empty()) {
    // Nothing in flight proves nothing: ask, so that a frozen Redis shows
    // as a timeout here too, not only on the reactors that had writes.
    if (ready_ && now_ns - last_sent_ns_ > timeout_ns) ping();
    return;
  }
  if (now_ns - pending_.front().sent_ns <= timeout_ns) return;
  // Answers come in order: the oldest is late, so is everything behind it.
  log_event(LogLevel::kWarn, "session-store-timeout", {{"pending", uint64_t{pending_.size()}}},
            "session store: no answer in %lld ms; %zu command(s) failed, reconnecting",
            static_cast<long long>(deps_.options.session_store_timeout.count()), pending_.size());
  commands_.drop(StoreError::kTimeout);
}

void RedisSessionStore::ping() {
  const char* argv[] = {"PING"};
  const size_t argl[] = {4};
  if (commands_.send(1, argv, argl, on_reply_cb, this))
    note_sent({Kind::kPing, nullptr, 0, 0, monotonic_ns()});
}

void RedisSessionStore::note_sent(const Pending& pending) {
  pending_.push_back(pending);
  last_sent_ns_ = pending.sent_ns;
  deps_.metrics.commands_total.add();
}

// ------------------------------------------------------------- requests

bool RedisSessionStore::run(unsigned script, std::string_view id,
                            std::span<const std::string_view> args, Kind kind, StoreWaiter* waiter,
                            uint64_t release_to, uint64_t frames) {
  if (!ready_) return false;
  send_turn_batch();  // what this session's connection wrote before goes first
  const Keys keys(id);
  argv_.clear();
  argl_.clear();
  auto push = [this](std::string_view arg) {
    argv_.push_back(arg.data());
    argl_.push_back(arg.size());
  };
  push("EVALSHA");
  push(script_sha_[script]);
  push("2");
  push(keys.hash);
  push(keys.list);
  for (std::string_view arg : args) push(arg);
  if (!commands_.send(static_cast<int>(argv_.size()), argv_.data(), argl_.data(), on_reply_cb,
                      this))
    return false;
  note_sent({kind, waiter, release_to, frames, monotonic_ns()});
  return true;
}

void RedisSessionStore::create(StoreWaiter& waiter, std::string_view id, const StoreToken& token,
                               uint64_t release_to) {
  const Decimal ttl(uint64_t(lease().count()));
  const std::string_view args[] = {token.view(), channel_, ttl.view()};
  if (!run(store_scripts::kCreateScript, id, args, Kind::kCreate, &waiter, release_to, 0))
    waiter.on_store_failed();
}

RedisSessionStore::Piece RedisSessionStore::put(std::string_view bytes) {
  const Piece piece{arena_.size(), bytes.size()};
  arena_.append(bytes);
  return piece;
}

void RedisSessionStore::append(StoreWaiter& waiter, std::string_view id, const StoreToken& token,
                               uint64_t count, uint64_t keep,
                               std::span<const std::string_view> payloads, uint64_t release_to) {
  if (!ready_) return waiter.on_store_failed();
  const Keys keys(id);
  batch_keys_.push_back(put(keys.hash));
  batch_keys_.push_back(put(keys.list));
  batch_args_.push_back(put(token.view()));
  batch_args_.push_back(put(Decimal(keep).view()));
  batch_args_.push_back(put(Decimal(count).view()));
  batch_args_.push_back(put(Decimal(payloads.size()).view()));
  for (std::string_view payload : payloads) batch_args_.push_back(put(payload));
  batch_members_.push_back({&waiter, release_to, count});
  batch_frames_ += count;
  deps_.metrics.pending_frames.add(count);
}

void RedisSessionStore::send_turn_batch() {
  if (batch_members_.empty()) return;
  const Decimal ttl(uint64_t(lease().count()));
  const Decimal key_count(batch_keys_.size());
  argv_.clear();
  argl_.clear();
  auto push = [this](const char* data, size_t size) {
    argv_.push_back(data);
    argl_.push_back(size);
  };
  push("EVALSHA", 7);
  push(script_sha_[store_scripts::kAppendScript].data(),
       script_sha_[store_scripts::kAppendScript].size());
  push(key_count.text, key_count.size);
  for (const Piece& key : batch_keys_) push(arena_.data() + key.offset, key.size);
  push(ttl.text, ttl.size);
  for (const Piece& arg : batch_args_) push(arena_.data() + arg.offset, arg.size);
  const bool sent = ready_ && commands_.send(static_cast<int>(argv_.size()), argv_.data(),
                                             argl_.data(), on_reply_cb, this);
  const uint64_t members = batch_members_.size();
  if (sent) {
    note_sent({Kind::kAppend, nullptr, members, batch_frames_, monotonic_ns()});
    members_in_flight_.insert(members_in_flight_.end(), batch_members_.begin(),
                              batch_members_.end());
  }
  std::vector<Member> failed;
  if (!sent) failed.swap(batch_members_);
  arena_.clear();
  batch_keys_.clear();
  batch_args_.clear();
  batch_members_.clear();
  batch_frames_ = 0;
  for (const Member& member : failed) {
    deps_.metrics.pending_frames.sub(member.frames);
    member.waiter->on_store_failed();
  }
}

void RedisSessionStore::resume(StoreWaiter& waiter, std::string_view id, uint64_t last_seq,
                               const StoreToken& token) {
  const Decimal last(last_seq);
  const Decimal ttl(uint64_t(lease().count()));
  const std::string_view args[] = {token.view(), channel_, last.view(), ttl.view(), id};
  if (!run(store_scripts::kResumeScript, id, args, Kind::kResume, &waiter, 0, 0))
    waiter.on_store_resumed(StoreResume{});
}

void RedisSessionStore::keep(std::string_view id, const StoreToken& token, milliseconds ttl,
                             std::string_view state) {
  const Decimal ttl_ms(uint64_t(ttl.count()));
  const std::string_view args[] = {token.view(), ttl_ms.view(), state};
  run(store_scripts::kKeepScript, id, args, Kind::kNoAnswer, nullptr, 0, 0);
}

void RedisSessionStore::renew_lease(std::string_view id, const StoreToken& token) {
  keep(id, token, lease(), "attached");
}

void RedisSessionStore::detach(std::string_view id, const StoreToken& token) {
  keep(id, token, deps_.options.resume_window, "detached");
}

void RedisSessionStore::remove(StoreWaiter* waiter, std::string_view id, const StoreToken& token,
                               uint64_t release_to) {
  const std::string_view args[] = {token.view(), "0", "detached"};  // the keep script, ttl 0
  const Kind kind = waiter ? Kind::kRemove : Kind::kNoAnswer;
  if (!run(store_scripts::kKeepScript, id, args, kind, waiter, release_to, 0) && waiter)
    waiter->on_store_failed();
}

void RedisSessionStore::forget(StoreWaiter& waiter) noexcept {
  for (Pending& pending : pending_)
    if (pending.waiter == &waiter) pending.waiter = nullptr;
  for (Member& member : members_in_flight_)
    if (member.waiter == &waiter) member.waiter = nullptr;
  for (Member& member : batch_members_)
    if (member.waiter == &waiter) member.waiter = nullptr;
}

// --------------------------------------------------------------- answers

void RedisSessionStore::on_reply_cb(redisAsyncContext*, void* reply, void* self) {
  auto* store = static_cast<RedisSessionStore*>(self);
  store->deps_.loop_clock.on_callback(Activity::kStore);
  store->on_reply(reply);
}

void RedisSessionStore::on_reply(void* reply) {
  if (pending_.empty()) return;  // cannot happen: one answer per command sent
  const Pending pending = pending_.front();
  pending_.pop_front();
  deps_.metrics.pending_frames.sub(pending.frames);
  if (reply) deps_.round_trip.record(monotonic_ns() - pending.sent_ns);
  if (is_error(reply)) {
    deps_.metrics.errors_total[static_cast<int>(StoreError::kReply)].add();
    log_event(LogLevel::kWarn, "session-store-error", {}, "session store: redis answered: %s",
              as_reply(reply)->str);
  }
  if (pending.kind == Kind::kLoadScript)
    return on_script_loaded(static_cast<unsigned>(pending.release_to), reply);
  if (pending.kind == Kind::kAppend) return answer_batch(pending.release_to, reply);
  if (pending.waiter) answer(pending, reply);
}

// One result per member, in the order they joined the batch.
void RedisSessionStore::answer_batch(uint64_t members, void* reply) {
  const redisReply* r = as_reply(reply);
  const bool whole = r && r->type == REDIS_REPLY_ARRAY && r->elements == members;
  for (uint64_t i = 0; i < members && !members_in_flight_.empty(); ++i) {
    const Member member = members_in_flight_.front();
    members_in_flight_.pop_front();
    if (!member.waiter) continue;
    const redisReply* result = whole ? r->element[i] : nullptr;
    if (!result || result->type != REDIS_REPLY_INTEGER)
      member.waiter->on_store_failed();
    else if (result->integer < 0)
      member.waiter->on_store_lost();
    else
      member.waiter->on_store_persisted(member.release_to);
  }
}

void RedisSessionStore::on_script_loaded(unsigned script, void* reply) {
  if (!reply || as_reply(reply)->type != REDIS_REPLY_STRING) {
    if (reply) commands_.drop(StoreError::kReply);  // cannot work without its scripts
    return;
  }
  script_sha_[script].assign(as_reply(reply)->str, as_reply(reply)->len);
  if (++scripts_loaded_ == store_scripts::kScriptCount) {
    commands_.answered();
    set_ready(true);
  }
}

void RedisSessionStore::answer(const Pending& pending, void* reply) {
  StoreWaiter& waiter = *pending.waiter;
  if (pending.kind == Kind::kResume) return answer_resume(waiter, reply);
  // kCreate (always 1) and kRemove (the keep script: 1 deleted, 0 not the owner).
  if (!reply || as_reply(reply)->type != REDIS_REPLY_INTEGER) return waiter.on_store_failed();
  if (as_reply(reply)->integer <= 0) return waiter.on_store_lost();
  waiter.on_store_persisted(pending.release_to);
}

void RedisSessionStore::answer_resume(StoreWaiter& waiter, void* reply) {
  StoreResume answer;
  const redisReply* r = as_reply(reply);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
      r->element[0]->type != REDIS_REPLY_INTEGER)
    return waiter.on_store_resumed(answer);
  answer.answered = true;
  static constexpr ResumeResult kByCode[] = {ResumeResult::kUnknown, ResumeResult::kBadSeq,
                                             ResumeResult::kReplayGap, ResumeResult::kOk,
                                             ResumeResult::kTakenOver};
  const long long code = r->element[0]->integer;
  if (code < 0 || code > 4) return waiter.on_store_resumed(StoreResume{});
  answer.result = kByCode[code];
  if (code >= 3 && r->elements >= 4) {
    answer.seq = static_cast<uint64_t>(r->element[1]->integer);
    const redisReply* frames = r->element[2];
    resume_frames_.clear();
    if (frames->type == REDIS_REPLY_ARRAY)
      for (size_t i = 0; i < frames->elements; ++i)
        resume_frames_.emplace_back(frames->element[i]->str, frames->element[i]->len);
    answer.frames = resume_frames_;
    const redisReply* previous = r->element[3];
    answer.from_other_node = previous->type == REDIS_REPLY_STRING &&
                             std::string_view(previous->str, previous->len) != channel_;
    if (answer.from_other_node) deps_.metrics.takeovers_total.add();
  }
  waiter.on_store_resumed(answer);
}

// ---------------------------------------------------------------- events

void RedisSessionStore::on_event_cb(redisAsyncContext*, void* reply, void* self) {
  auto* store = static_cast<RedisSessionStore*>(self);
  store->deps_.loop_clock.on_callback(Activity::kStore);
  store->on_event(reply);
}

// ["message", channel, "<id> <token>"]: a session of this node was taken
// over or deleted elsewhere.
void RedisSessionStore::on_event(void* reply) {
  const redisReply* r = as_reply(reply);
  if (stopping_ || !r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
  const std::string_view what(r->element[0]->str, r->element[0]->len);
  if (what == "subscribe") events_.answered();
  if (what != "message") return;
  const std::string_view text(r->element[2]->str, r->element[2]->len);
  const auto space = text.find(' ');
  if (space == std::string_view::npos) return;
  const std::string_view token = text.substr(space + 1);
  constexpr size_t kRememberedReleases = 1024;
  if (released_tokens_.size() == kRememberedReleases) released_tokens_.pop_front();
  released_tokens_.emplace_back(token);
  deps_.on_released(text.substr(0, space), token);
}

bool RedisSessionStore::was_released(std::string_view token) const {
  return std::find(released_tokens_.begin(), released_tokens_.end(), token) !=
         released_tokens_.end();
}

std::unique_ptr<SessionStore> make_redis_store(SessionStore::Deps deps) {
  return std::make_unique<RedisSessionStore>(std::move(deps));
}

}  // namespace flux
