// SessionStore against a real redis-server (tests/support/redis_server.h):
// what it writes, the TTLs, atomic ownership when two nodes race for one
// session, the pub/sub release, the answers of docs/protocol.md section 8,
// and its faults (Redis killed, Redis frozen). Each store runs on its own
// event_base, driven by this thread as a reactor would drive it.

#include <event2/event.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/libevent_ptr.h"
#include "gateway/redis_session_store.h"
#include "support/deadline.h"
#include "support/redis_server.h"

namespace flux {
namespace {

using itest::after;
using itest::Clock;
using itest::RedisServer;

// Everything a store told one connection.
struct RecordingWaiter final : StoreWaiter {
  void on_store_persisted(uint64_t release_to) override { persisted.push_back(release_to); }
  void on_store_lost() override { ++lost; }
  void on_store_failed() override { ++failed; }
  void on_store_resumed(const StoreResume& answer) override {
    resumed = true;
    answered = answer.answered;
    result = answer.result;
    seq = answer.seq;
    from_other_node = answer.from_other_node;
    frames.clear();
    for (size_t i = 0; i < answer.frames.size(); ++i) frames.emplace_back(answer.frames[i]);
  }
  size_t answers() const { return persisted.size() + lost + failed + (resumed ? 1 : 0); }

  std::vector<uint64_t> persisted;
  int lost = 0;
  int failed = 0;
  bool resumed = false;
  bool answered = false;
  ResumeResult result = ResumeResult::kUnknown;
  uint64_t seq = 0;
  bool from_other_node = false;
  std::vector<std::string> frames;
};

// One node's store on its own event_base.
struct Node {
  Node(const RedisServer& redis, uint16_t node_id, std::chrono::milliseconds resume_window,
       std::chrono::milliseconds timeout = std::chrono::milliseconds(1000))
      : base(event_base_new()), clock(metrics) {
    options.node_id = node_id;
    options.resume_window = resume_window;
    options.session_store = {true, "127.0.0.1", redis.port()};
    options.session_store_timeout = timeout;
    store = std::make_unique<RedisSessionStore>(
        SessionStore::Deps{base.get(), options, metrics.session_store, metrics.store_round_trip,
                           clock, 0, [this](std::string_view id, std::string_view token) {
                             released.emplace_back(std::string(id) + " " + std::string(token));
                           }});
  }
  void turn() {
    store->send_turn_batch();
    event_base_loop(base.get(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
  }

  Options options;
  ReactorMetrics metrics;
  EventBasePtr base;
  LoopClock clock;
  std::unique_ptr<RedisSessionStore> store;
  std::vector<std::string> released;
};

// Turns every node's loop until `done` or the deadline.
bool drive(std::vector<Node*> nodes, const std::function<bool()>& done,
           std::chrono::milliseconds bound = std::chrono::milliseconds(5000)) {
  const auto deadline = after(bound);
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    for (Node* node : nodes) node->turn();
  }
  return true;
}

constexpr std::string_view kId = "0001aaaaaaaaaaaaaaaaaaaaaaaaaaaa";

class SessionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis.start()); }

  // A session created on `node`, held by `token`.
  void create(Node& node, const StoreToken& token, std::string_view id = kId) {
    ASSERT_TRUE(drive({&node}, [&] { return node.store->available(); }));
    RecordingWaiter waiter;
    node.store->create(waiter, id, token, 1);
    ASSERT_TRUE(drive({&node}, [&] { return waiter.answers() == 1; }));
    ASSERT_EQ(waiter.persisted.size(), 1u);
  }
  // Appends frames; returns what the waiter heard.
  RecordingWaiter append(Node& node, const StoreToken& token, std::vector<std::string_view> frames,
                         uint64_t keep, std::string_view id = kId) {
    RecordingWaiter waiter;
    node.store->append(waiter, id, token, frames.size(), keep, frames, 7);
    EXPECT_TRUE(drive({&node}, [&] { return waiter.answers() == 1; }));
    return waiter;
  }
  RecordingWaiter resume(Node& node, uint64_t last_seq, const StoreToken& token,
                         std::string_view id = kId) {
    RecordingWaiter waiter;
    node.store->resume(waiter, id, last_seq, token);
    EXPECT_TRUE(drive({&node}, [&] { return waiter.resumed; }));
    return waiter;
  }
  std::string hash_key() const { return "flux:s:" + std::string(kId); }
  std::string list_key() const { return "flux:f:" + std::string(kId); }

  RedisServer redis;
};

TEST_F(SessionStoreTest, FramesAreInRedisWhenTheAppendIsAcknowledged) {
  Node node(redis, 1, std::chrono::seconds(30));
  const StoreToken token = node.store->next_token();
  create(node, token);
  RecordingWaiter waiter = append(node, token, {"one", "two", "three"}, 3);
  ASSERT_EQ(waiter.persisted, std::vector<uint64_t>{7});
  EXPECT_EQ(redis.command({"HGET", hash_key(), "seq"}), "3");
  EXPECT_EQ(redis.command({"HGET", hash_key(), "owner"}), std::string(token.view()));
  EXPECT_EQ(redis.command({"HGET", hash_key(), "state"}), "attached");
  EXPECT_EQ(redis.command({"LRANGE", list_key(), "0", "-1"}), "one\ntwo\nthree");
  // Attached: the lease (resume window + two renewal periods), not forever.
  const long long ttl = std::stoll(redis.command({"PTTL", hash_key()}));
  EXPECT_GT(ttl, 30'000);
  EXPECT_LE(ttl, node.store->lease().count());
  // The store keeps what the node keeps: `keep` bounds the list.
  append(node, token, {"four", "five"}, 2);
  EXPECT_EQ(redis.command({"LRANGE", list_key(), "0", "-1"}), "four\nfive");
  EXPECT_EQ(redis.command({"HGET", hash_key(), "seq"}), "5");
  EXPECT_EQ(node.metrics.session_store.pending_frames.get(), 0u);
}

TEST_F(SessionStoreTest, DetachStartsTheResumeWindowAndByeDeletes) {
  Node node(redis, 1, std::chrono::seconds(2));
  const StoreToken token = node.store->next_token();
  create(node, token);
  append(node, token, {"a"}, 1);
  node.store->detach(kId, token);
  ASSERT_TRUE(drive({&node}, [&] {
    return redis.command({"HGET", hash_key(), "state"}) == "detached";
  }));
  const long long ttl = std::stoll(redis.command({"PTTL", hash_key()}));
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 2000);
  EXPECT_LE(std::stoll(redis.command({"PTTL", list_key()})), 2000);

  const StoreToken again = node.store->next_token();
  ASSERT_EQ(resume(node, 1, again).result, ResumeResult::kOk);
  node.store->remove(nullptr, kId, again, 0);
  ASSERT_TRUE(drive({&node}, [&] { return redis.command({"EXISTS", hash_key()}) == "0"; }));
  EXPECT_EQ(redis.command({"EXISTS", list_key()}), "0");
}

TEST_F(SessionStoreTest, ResumeAnswersAsSectionEight) {
  Node node(redis, 1, std::chrono::seconds(30));
  const StoreToken token = node.store->next_token();
  EXPECT_EQ(resume(node, 0, node.store->next_token()).result, ResumeResult::kUnknown);
  create(node, token);
  append(node, token, {"f1", "f2", "f3", "f4"}, 2);  // keeps f3, f4 (seq 3, 4)
  node.store->detach(kId, token);

  RecordingWaiter bad = resume(node, 5, node.store->next_token());
  EXPECT_TRUE(bad.answered);
  EXPECT_EQ(bad.result, ResumeResult::kBadSeq);
  EXPECT_EQ(redis.command({"HGET", hash_key(), "state"}), "detached");  // left as it was

  RecordingWaiter ok = resume(node, 2, node.store->next_token());
  EXPECT_EQ(ok.result, ResumeResult::kOk);
  EXPECT_EQ(ok.seq, 4u);
  EXPECT_EQ(ok.frames, (std::vector<std::string>{"f3", "f4"}));
  EXPECT_FALSE(ok.from_other_node);

  RecordingWaiter up_to_date = resume(node, 4, node.store->next_token());
  EXPECT_EQ(up_to_date.result, ResumeResult::kTakenOver);  // the previous resume holds it
  EXPECT_TRUE(up_to_date.frames.empty());

  RecordingWaiter gap = resume(node, 1, node.store->next_token());  // f2 is gone
  EXPECT_EQ(gap.result, ResumeResult::kReplayGap);
  EXPECT_EQ(redis.command({"EXISTS", hash_key()}), "0");  // discarded
}

TEST_F(SessionStoreTest, TheHolderHearsOnItsNodeChannelWhenAnotherNodeTakesOver) {
  Node one(redis, 1, std::chrono::seconds(30));
  Node two(redis, 2, std::chrono::seconds(30));
  ASSERT_TRUE(
      drive({&one, &two}, [&] { return one.store->available() && two.store->available(); }));
  const StoreToken token = one.store->next_token();
  create(one, token);
  append(one, token, {"x"}, 1);
  // Node one's subscription is in place once a PUBLISH on its channel reaches a subscriber.
  ASSERT_TRUE(drive({&one}, [&] {
    return redis.command({"PUBSUB", "NUMSUB", "flux:node:1"}) == "flux:node:1\n1";
  }));

  RecordingWaiter taken = resume(two, 0, two.store->next_token());
  EXPECT_EQ(taken.result, ResumeResult::kTakenOver);
  EXPECT_TRUE(taken.from_other_node);
  EXPECT_EQ(taken.frames, std::vector<std::string>{"x"});
  EXPECT_EQ(two.metrics.session_store.takeovers_total.get(), 1u);
  ASSERT_TRUE(drive({&one, &two}, [&] { return !one.released.empty(); }));
  EXPECT_EQ(one.released,
            std::vector<std::string>{std::string(kId) + " " + std::string(token.view())});
  // The old holder can never write again.
  RecordingWaiter late = append(one, token, {"late"}, 2);
  EXPECT_EQ(late.lost, 1);
  EXPECT_EQ(redis.command({"HGET", hash_key(), "seq"}), "1");
}

// Two nodes resume one session in the same instant, many times over: the
// script decides, so exactly one of them can write afterwards.
TEST_F(SessionStoreTest, TwoNodesRacingForOneSessionNeverBothOwnIt) {
  Node one(redis, 1, std::chrono::seconds(30));
  Node two(redis, 2, std::chrono::seconds(30));
  ASSERT_TRUE(
      drive({&one, &two}, [&] { return one.store->available() && two.store->available(); }));
  create(one, one.store->next_token());
  constexpr int kRounds = 300;
  int one_won = 0;
  int two_won = 0;
  for (int round = 0; round < kRounds; ++round) {
    const StoreToken a = one.store->next_token();
    const StoreToken b = two.store->next_token();
    RecordingWaiter ra;
    RecordingWaiter rb;
    one.store->resume(ra, kId, 0, a);
    two.store->resume(rb, kId, 0, b);
    ASSERT_TRUE(drive({&one, &two}, [&] { return ra.resumed && rb.resumed; }));
    ASSERT_TRUE(ra.answered && rb.answered);
    RecordingWaiter wa;
    RecordingWaiter wb;
    one.store->append(wa, kId, a, 0, 0, {}, 1);
    two.store->append(wb, kId, b, 0, 0, {}, 1);
    ASSERT_TRUE(drive({&one, &two}, [&] { return wa.answers() == 1 && wb.answers() == 1; }));
    ASSERT_EQ(wa.persisted.size() + wb.persisted.size(), 1u) << "round " << round;
    ASSERT_EQ(wa.lost + wb.lost, 1) << "round " << round;
    const std::string owner = redis.command({"HGET", hash_key(), "owner"});
    if (wa.persisted.size() == 1) {
      ++one_won;
      ASSERT_EQ(owner, std::string(a.view()));
    } else {
      ++two_won;
      ASSERT_EQ(owner, std::string(b.view()));
    }
  }
  EXPECT_EQ(one_won + two_won, kRounds);
}

TEST_F(SessionStoreTest, ADeadStoreFailsAtOnceAndTheStoreComesBackByItself) {
  Node node(redis, 1, std::chrono::seconds(30));
  const StoreToken token = node.store->next_token();
  create(node, token);
  redis.kill();
  ASSERT_TRUE(drive({&node}, [&] { return !node.store->available(); }));
  EXPECT_EQ(node.metrics.session_store.connected.get(), 0u);
  RecordingWaiter waiter;
  node.store->append(waiter, kId, token, 1, 1, std::vector<std::string_view>{"x"}, 1);
  EXPECT_EQ(waiter.failed, 1);  // nothing waits for a store that is down
  RecordingWaiter resumer;
  node.store->resume(resumer, kId, 0, node.store->next_token());
  EXPECT_TRUE(resumer.resumed);
  EXPECT_FALSE(resumer.answered);

  ASSERT_TRUE(redis.restart());  // same port, empty
  ASSERT_TRUE(drive(
      {&node}, [&] { return node.store->available(); }, std::chrono::seconds(15)));
  EXPECT_EQ(node.metrics.session_store.connected.get(), 1u);
  EXPECT_GE(
      node.metrics.session_store.errors_total[static_cast<int>(StoreError::kDisconnect)].get(), 1u);
}

TEST_F(SessionStoreTest, AFrozenStoreTimesOutAndItsCommandsFail) {
  Node node(redis, 1, std::chrono::seconds(30), std::chrono::milliseconds(300));
  const StoreToken token = node.store->next_token();
  create(node, token);
  redis.pause();
  RecordingWaiter waiter;
  node.store->append(waiter, kId, token, 1, 1, std::vector<std::string_view>{"x"}, 1);
  const auto started = Clock::now();
  ASSERT_TRUE(drive({&node}, [&] {
    node.store->on_tick(monotonic_ns());
    return waiter.answers() == 1;
  }));
  EXPECT_EQ(waiter.failed, 1);
  EXPECT_GE(itest::ms_since(started), 250);
  EXPECT_EQ(node.metrics.session_store.errors_total[static_cast<int>(StoreError::kTimeout)].get(),
            1u);
  EXPECT_EQ(node.metrics.session_store.pending_frames.get(), 0u);
  redis.resume();
  ASSERT_TRUE(drive(
      {&node}, [&] { return node.store->available(); }, std::chrono::seconds(15)));
}

// A reactor with no session writing has nothing in flight to time out: its
// PING (one per timeout while idle) is what shows it a frozen Redis.
TEST_F(SessionStoreTest, AnIdleStoreNoticesAFrozenRedisByItsPing) {
  Node node(redis, 1, std::chrono::seconds(30), std::chrono::milliseconds(300));
  ASSERT_TRUE(drive({&node}, [&] { return node.store->available(); }));
  // Idle and answered: its pings are answered too, so it stays up.
  const auto idle_since = Clock::now();
  drive({&node}, [&] {
    node.store->on_tick(monotonic_ns());
    return itest::ms_since(idle_since) >= 1000;
  });
  EXPECT_TRUE(node.store->available());
  EXPECT_GE(node.metrics.session_store.commands_total.get(), 4u + 2u) << "4 script loads, pings";

  redis.pause();
  const auto frozen_at = Clock::now();
  ASSERT_TRUE(drive({&node}, [&] {
    node.store->on_tick(monotonic_ns());
    return !node.store->available();
  }));
  EXPECT_GE(itest::ms_since(frozen_at), 300);
  EXPECT_EQ(node.metrics.session_store.connected.get(), 0u);
  EXPECT_EQ(node.metrics.session_store.errors_total[static_cast<int>(StoreError::kTimeout)].get(),
            1u);
  redis.resume();
  ASSERT_TRUE(drive(
      {&node}, [&] { return node.store->available(); }, std::chrono::seconds(15)));
}

// A frozen redis-server's kernel still accepts connections, so a connect is
// no proof of health: the back-off keeps growing until Redis answers (with
// a reset on connect, it would reconnect every 100 ms + timeout).
TEST_F(SessionStoreTest, WhileRedisIsFrozenTheReconnectsBackOff) {
  Node node(redis, 1, std::chrono::seconds(30), std::chrono::milliseconds(300));
  ASSERT_TRUE(drive({&node}, [&] { return node.store->available(); }));
  redis.pause();
  const auto frozen_at = Clock::now();
  drive(
      {&node},
      [&] {
        node.store->on_tick(monotonic_ns());
        return itest::ms_since(frozen_at) >= 4500;
      },
      std::chrono::seconds(10));
  const uint64_t timeouts =
      node.metrics.session_store.errors_total[static_cast<int>(StoreError::kTimeout)].get();
  // Backing off: 0.3 + (0.1 + 0.3) + (0.2 + 0.3) + (0.4 + 0.3) + (0.8 + 0.3) + (1.6 + ...)
  // = 5 or 6 timeouts in 4.5 s; without it, one every 0.4 s (11).
  EXPECT_GE(timeouts, 3u);
  EXPECT_LE(timeouts, 7u);
  EXPECT_FALSE(node.store->available());
  redis.resume();
  ASSERT_TRUE(drive(
      {&node}, [&] { return node.store->available(); }, std::chrono::seconds(15)));
}

}  // namespace
}  // namespace flux
