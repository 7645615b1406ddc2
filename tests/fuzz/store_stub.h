#pragma once
// StubStore: the session store of the fuzzer's store mode, in process and
// on the harness's one thread. It answers exactly as the Redis scripts
// (gateway/store_scripts.h) decide, from a StubBackend the reactors share
// (what Redis would hold), but one loop turn late: every request made in a
// turn is applied and answered at the end of the next one, so the waits
// the store brings (echo after persist, READY after create, a resume
// waiting for its answer, the release of a taken-over holder) are part of
// what the fuzzer interleaves. Never a failure: the fuzzer's model of
// section 8 has no place for a store that is down.
//
// Only the fuzzer uses it; the gateway's tests run the real Redis.
//
// Thread contract: the harness thread only.

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/session_store.h"

namespace flux::fuzz {

class StubStore;

struct StubBackend {
  struct Record {
    std::string owner;  // the holder's token
    unsigned reactor = 0;
    uint64_t seq = 0;
    std::deque<std::string> frames;  // the last `keep` payloads
    bool attached = true;
  };
  std::unordered_map<std::string, Record> sessions;
  std::vector<StubStore*> stores;  // by reactor index: its "node channel"

  // Requests not yet answered, in every store: the harness settles until none.
  size_t in_flight = 0;
};

class StubStore final : public SessionStore {
 public:
  StubStore(Deps deps, StubBackend& backend) : SessionStore(std::move(deps)), backend_(backend) {
    if (backend_.stores.size() <= deps_.reactor_index)
      backend_.stores.resize(deps_.reactor_index + 1);
    backend_.stores[deps_.reactor_index] = this;
  }
  ~StubStore() override {
    backend_.in_flight -= queued_.size() + due_.size();
    backend_.stores[deps_.reactor_index] = nullptr;
  }

  bool available() const noexcept override { return true; }

  void create(StoreWaiter& waiter, std::string_view id, const StoreToken& token,
              uint64_t release_to) override {
    ask(&waiter, [this, id = std::string(id), token = std::string(token.view()),
                  release_to](StoreWaiter* w) {
      backend_.sessions[id] = {token, deps_.reactor_index, 0, {}, true};
      if (w) w->on_store_persisted(release_to);
    });
  }

  void append(StoreWaiter& waiter, std::string_view id, const StoreToken& token, uint64_t count,
              uint64_t keep, std::span<const std::string_view> payloads,
              uint64_t release_to) override {
    std::vector<std::string> copies(payloads.begin(), payloads.end());
    ask(&waiter, [this, id = std::string(id), token = std::string(token.view()), count, keep,
                  copies = std::move(copies), release_to](StoreWaiter* w) {
      auto found = backend_.sessions.find(id);
      if (found == backend_.sessions.end() || found->second.owner != token) {
        if (w) w->on_store_lost();
        return;
      }
      StubBackend::Record& record = found->second;
      for (const std::string& payload : copies) record.frames.push_back(payload);
      while (record.frames.size() > keep) record.frames.pop_front();
      record.seq += count;
      if (w) w->on_store_persisted(release_to);
    });
  }

  void send_turn_batch() override {
    // What was asked in earlier turns is answered now; what this turn asked, next turn.
    std::deque<Request> due = std::move(due_);
    due_ = std::move(queued_);
    queued_.clear();
    for (Request& request : due) {
      --backend_.in_flight;
      request.apply(request.waiter);
    }
  }

  void resume(StoreWaiter& waiter, std::string_view id, uint64_t last_seq,
              const StoreToken& token) override {
    ask(&waiter, [this, id = std::string(id), last_seq, token = std::string(token.view())](
                     StoreWaiter* w) { decide_resume(w, id, last_seq, token); });
  }

  void forget(StoreWaiter& waiter) noexcept override {
    for (Request& request : queued_)
      if (request.waiter == &waiter) request.waiter = nullptr;
    for (Request& request : due_)
      if (request.waiter == &waiter) request.waiter = nullptr;
  }

  void renew_lease(std::string_view, const StoreToken&) override {}  // no TTL here

  void detach(std::string_view id, const StoreToken& token) override {
    ask(nullptr, [this, id = std::string(id), token = std::string(token.view())](StoreWaiter*) {
      auto found = backend_.sessions.find(id);
      if (found == backend_.sessions.end() || found->second.owner != token) return;
      if (deps_.options.resume_window.count() == 0)
        backend_.sessions.erase(found);
      else
        found->second.attached = false;
    });
  }

  void remove(StoreWaiter* waiter, std::string_view id, const StoreToken& token,
              uint64_t release_to) override {
    ask(waiter, [this, id = std::string(id), token = std::string(token.view()),
                 release_to](StoreWaiter* w) {
      auto found = backend_.sessions.find(id);
      const bool owner = found != backend_.sessions.end() && found->second.owner == token;
      if (owner) backend_.sessions.erase(found);
      if (w && owner) w->on_store_persisted(release_to);
      if (w && !owner) w->on_store_lost();
    });
  }

  void on_tick(uint64_t) override {}

 private:
  struct Request {
    StoreWaiter* waiter;
    std::function<void(StoreWaiter*)> apply;
  };

  void ask(StoreWaiter* waiter, std::function<void(StoreWaiter*)> apply) {
    queued_.push_back({waiter, std::move(apply)});
    ++backend_.in_flight;
  }

  // The resume script, step by step.
  void decide_resume(StoreWaiter* w, const std::string& id, uint64_t last_seq,
                     const std::string& token) {
    StoreResume answer;
    answer.answered = true;
    auto found = backend_.sessions.find(id);
    if (found == backend_.sessions.end()) {
      if (w) w->on_store_resumed(answer);  // kUnknown
      return;
    }
    StubBackend::Record& record = found->second;
    if (last_seq > record.seq) {
      answer.result = ResumeResult::kBadSeq;
      if (w) w->on_store_resumed(answer);
      return;
    }
    const uint64_t kept = record.frames.size();
    if (last_seq < record.seq && last_seq < record.seq - kept) {
      if (record.attached) release(record, id);
      backend_.sessions.erase(found);
      answer.result = ResumeResult::kReplayGap;
      if (w) w->on_store_resumed(answer);
      return;
    }
    if (record.attached) release(record, id);
    answer.result = record.attached ? ResumeResult::kTakenOver : ResumeResult::kOk;
    record.owner = token;
    record.reactor = deps_.reactor_index;
    record.attached = true;
    answer.seq = record.seq;
    std::vector<std::string_view> frames;
    for (uint64_t i = kept - (record.seq - last_seq); i < kept; ++i)
      frames.emplace_back(record.frames[i]);
    answer.frames = frames;
    if (w) w->on_store_resumed(answer);
  }

  // PUBLISH on the previous holder's channel: heard there next turn.
  void release(const StubBackend::Record& record, const std::string& id) {
    StubStore* holder =
        record.reactor < backend_.stores.size() ? backend_.stores[record.reactor] : nullptr;
    if (!holder) return;
    holder->ask(nullptr, [holder, id, token = record.owner](StoreWaiter*) {
      holder->deps_.on_released(id, token);
    });
  }

  StubBackend& backend_;
  std::deque<Request> queued_;  // asked this turn
  std::deque<Request> due_;     // asked last turn: answered at the end of this one
};

}  // namespace flux::fuzz
