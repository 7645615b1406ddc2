// SessionTable in-process, on a real libevent base: the decisions of
// docs/protocol.md section 7 (resume outcomes, takeover, replay-gap discards),
// the three replay bounds (--replay-frames, --replay-bytes, --replay-memory
// with oldest-first eviction), expiry by timer, and the session metrics as
// invariants: the memory gauges always equal what the buffers hold, and
// return to zero when the sessions are gone.
//
// A session knows its connection only as a SessionHolder, which the table
// tells when it loses the session to a resume (takeover, or a replay gap
// while attached). So the tests stand in small fake holders, which count
// what they were told, instead of building real connections.
//
// Expiry waits on the wall clock (libevent's timer queue has no clock to
// inject), with a 20 ms window and every wait bounded by a guard timeout.

#include "gateway/session_table.h"

#include <event2/event.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/buffer_pool.h"
#include "gateway/libevent_ptr.h"
#include "gateway/loop_clock.h"

namespace flux {
namespace {

using namespace std::chrono_literals;

constexpr size_t kSmallBlock = 4096;  // as the reactor's replay pool
constexpr unsigned kThisReactor = 0;

// Stands in for a connection: counts the takeovers it is told of.
struct FakeHolder final : SessionHolder {
  void on_session_taken_over() override { ++taken_over; }
  int taken_over = 0;
};

class FakeHolders {
 public:
  FakeHolder& operator[](size_t i) { return holders_.at(i); }

 private:
  std::array<FakeHolder, 16> holders_{};
};

std::string payload_for(uint64_t n, size_t size) {
  std::string p(size, '\0');
  for (size_t i = 0; i < size; ++i) p[i] = static_cast<char>((n * 131 + i * 7) & 0xff);
  return p;
}

class SessionTableTest : public ::testing::Test {
 protected:
  // Builds the table with the options as set by the test so far.
  // With `store`, sessions go into it (--session-store).
  SessionTable& make_table(SessionStore* store = nullptr) {
    resume_window_ = CommonTimeout(base_.get(), options_.resume_window);
    table_ = std::make_unique<SessionTable>(SessionTable::Deps{base_.get(),
                                                               options_,
                                                               metrics_.sessions,
                                                               {small_, large_},
                                                               ids_,
                                                               resume_window_,
                                                               loop_clock_,
                                                               directory_,
                                                               kThisReactor,
                                                               store,
                                                               &metrics_.session_store});
    return *table_;
  }

  // Records data frames seq+1 .. seq+n of `session`, `size` bytes each.
  void record(Session& session, int n, size_t size = 64) {
    for (int i = 0; i < n; ++i) {
      ReplayBuffer::Stored stored = table_->record(session, payload_for(session.seq + 1, size));
      ASSERT_EQ(stored.payload, payload_for(session.seq, size));
    }
  }

  SessionTable::ResumeOutcome resume(const Session& session, uint64_t last_seq, SessionHolder& by) {
    return table_->resume(view(session.id), last_seq, by);
  }

  // Runs the loop for `d` (timers fire meanwhile), then returns.
  void run_for(std::chrono::milliseconds d) {
    timeval tv{0, static_cast<suseconds_t>(d.count() * 1000)};
    event_base_loopexit(base_.get(), &tv);
    event_base_dispatch(base_.get());
  }

  uint64_t resumes(ResumeResult r) const {
    return metrics_.sessions.resumes_total[static_cast<int>(r)].get();
  }
  uint64_t memory_gauge() const { return metrics_.sessions.replay_memory_bytes.get(); }
  uint64_t frame_bytes_gauge() const { return metrics_.sessions.replay_frame_bytes.get(); }

  // The gauges equal the sum over these sessions' buffers.
  void expect_gauges_match(const std::vector<const Session*>& live) const {
    uint64_t memory = 0, frames = 0;
    for (const Session* s : live) {
      memory += s->replay.memory_bytes();
      frames += s->replay.frame_bytes();
    }
    EXPECT_EQ(memory_gauge(), memory);
    EXPECT_EQ(frame_bytes_gauge(), frames);
  }

  EventBasePtr base_{event_base_new()};
  Options options_;
  ReactorMetrics metrics_;
  PoolMetrics small_metrics_, large_metrics_;
  BufferPool small_{kSmallBlock, 0, small_metrics_};
  BufferPool large_{BufferPool::block_size_for(65536), 0, large_metrics_};
  SessionIdGenerator ids_;
  CommonTimeout resume_window_;
  LoopClock loop_clock_{metrics_};
  SessionDirectory directory_;  // as a mesh's, shared with no other reactor here
  FakeHolders conn_;
  std::unique_ptr<SessionTable> table_;  // last: goes before what it uses
};

// ---------------------------------------------------------------- create

TEST_F(SessionTableTest, CreateGivesDistinctAttachedSessions) {
  SessionTable& table = make_table();
  std::set<std::string> seen;
  for (size_t i = 0; i < 5; ++i) {
    Session& s = table.create(conn_[i]);
    EXPECT_EQ(s.holder, &conn_[i]);
    EXPECT_EQ(s.seq, 0u);
    EXPECT_TRUE(is_well_formed_session_id(view(s.id)));
    EXPECT_TRUE(seen.emplace(view(s.id)).second) << "id issued twice";
  }
  EXPECT_EQ(table.size(), 5u);
  EXPECT_EQ(metrics_.sessions.created_total.get(), 5u);
  EXPECT_EQ(metrics_.sessions.attached.get(), 5u);
  EXPECT_EQ(metrics_.sessions.detached.get(), 0u);
}

TEST_F(SessionTableTest, RecordCountsSeqAndKeepsTheFrames) {
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  record(s, 5, 100);
  EXPECT_EQ(s.seq, 5u);
  EXPECT_EQ(s.replay.count(), 5u);
  EXPECT_EQ(s.replay.first_seq(), 1u);
  EXPECT_EQ(frame_bytes_gauge(), 5 * (4 + 100u));
  EXPECT_EQ(memory_gauge(), kSmallBlock);
  expect_gauges_match({&s});
}

// --------------------------------------------------------------- resume

TEST_F(SessionTableTest, ResumeOfADetachedSessionAttachesIt) {
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  record(s, 3);
  table.detach(s);
  EXPECT_TRUE(s.detached);
  EXPECT_EQ(s.holder, nullptr);
  EXPECT_EQ(metrics_.sessions.detached.get(), 1u);
  EXPECT_EQ(metrics_.sessions.attached.get(), 0u);

  SessionTable::ResumeOutcome out = resume(s, 1, conn_[1]);
  EXPECT_EQ(out.result, ResumeResult::kOk);
  EXPECT_EQ(out.session, &s);
  EXPECT_EQ(conn_[0].taken_over, 0) << "detached: nobody to tell";
  EXPECT_EQ(s.holder, &conn_[1]);
  EXPECT_FALSE(s.detached);
  EXPECT_EQ(metrics_.sessions.detached.get(), 0u);
  EXPECT_EQ(metrics_.sessions.attached.get(), 1u);
  EXPECT_EQ(resumes(ResumeResult::kOk), 1u);
  EXPECT_EQ(s.seq, 3u) << "a resume does not count";
}

TEST_F(SessionTableTest, ResumeOfAnAttachedSessionTellsThePreviousHolder) {
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  SessionTable::ResumeOutcome out = resume(s, 0, conn_[1]);
  EXPECT_EQ(out.result, ResumeResult::kTakenOver);
  EXPECT_EQ(out.session, &s);
  EXPECT_EQ(conn_[0].taken_over, 1);
  EXPECT_EQ(conn_[1].taken_over, 0);
  EXPECT_EQ(s.holder, &conn_[1]);
  EXPECT_EQ(metrics_.sessions.attached.get(), 1u) << "still one attached session";
  EXPECT_EQ(resumes(ResumeResult::kTakenOver), 1u);
}

TEST_F(SessionTableTest, BadSeqLeavesTheSessionAsItWas) {
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  record(s, 2);
  SessionTable::ResumeOutcome out = resume(s, 3, conn_[1]);
  EXPECT_EQ(out.result, ResumeResult::kBadSeq);
  EXPECT_EQ(out.session, nullptr);
  EXPECT_EQ(s.holder, &conn_[0]) << "not taken over";
  EXPECT_EQ(conn_[0].taken_over, 0);
  table.detach(s);
  EXPECT_EQ(resume(s, 3, conn_[1]).result, ResumeResult::kBadSeq);
  EXPECT_TRUE(s.detached) << "still waiting for a good resume";
  EXPECT_EQ(resume(s, 2, conn_[1]).result, ResumeResult::kOk);
  EXPECT_EQ(resumes(ResumeResult::kBadSeq), 2u);
}

TEST_F(SessionTableTest, UnknownIdIsUnknown) {
  SessionTable& table = make_table();
  table.create(conn_[0]);
  const SessionTable::ResumeOutcome out =
      table.resume("0123456789abcdef0123456789abcdef", 0, conn_[1]);
  EXPECT_EQ(out.result, ResumeResult::kUnknown);
  EXPECT_EQ(out.session, nullptr);
  EXPECT_EQ(resumes(ResumeResult::kUnknown), 1u);
}

// A gap can never be served whole again: the session goes at once (a
// second resume is unknown even before the reactor reaps it).
TEST_F(SessionTableTest, ReplayGapDiscardsTheSession) {
  options_.replay_frames = 4;
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  record(s, 10);
  table.detach(s);
  const std::string id(view(s.id));
  EXPECT_EQ(table.resume(id, 5, conn_[1]).result, ResumeResult::kReplayGap);
  EXPECT_EQ(table.resume(id, 10, conn_[1]).result, ResumeResult::kUnknown);
  EXPECT_EQ(metrics_.sessions.detached.get(), 0u);
  EXPECT_EQ(memory_gauge(), 0u);
  EXPECT_EQ(frame_bytes_gauge(), 0u);
  table.reap();
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.resume(id, 10, conn_[1]).result, ResumeResult::kUnknown);
}

// A gap on a session still attached: its holder loses it and is told.
TEST_F(SessionTableTest, ReplayGapOnAnAttachedSessionTellsItsHolder) {
  options_.replay_frames = 4;
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  record(s, 10);
  const std::string id(view(s.id));
  EXPECT_EQ(table.resume(id, 5, conn_[1]).result, ResumeResult::kReplayGap);
  EXPECT_EQ(conn_[0].taken_over, 1);
  EXPECT_EQ(conn_[1].taken_over, 0);
  EXPECT_EQ(metrics_.sessions.attached.get(), 0u);
  table.reap();
  EXPECT_EQ(table.size(), 0u);
}

// A session another reactor of the group owns is not answered here: the
// caller is told where it lives, and nothing is counted (the owner will).
TEST_F(SessionTableTest, ASessionOfAnotherReactorIsNamedNotAnswered) {
  SessionTable& table = make_table();
  const std::string id = "0123456789abcdef0123456789abcdef";
  ASSERT_TRUE(directory_.claim(id, kThisReactor + 1));
  SessionTable::ResumeOutcome out = table.resume(id, 0, conn_[0]);
  EXPECT_EQ(out.elsewhere, kThisReactor + 1);
  EXPECT_EQ(out.session, nullptr);
  for (int r = 0; r < kResumeResultCount; ++r)
    EXPECT_EQ(metrics_.sessions.resumes_total[r].get(), 0u);
}

TEST_F(SessionTableTest, SessionIdsAreClaimedInTheDirectoryUntilFreed) {
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  const std::string id(view(s.id));
  EXPECT_EQ(directory_.owner(id), kThisReactor);
  table.discard(s);
  EXPECT_EQ(directory_.owner(id), kThisReactor) << "until reaped";
  table.reap();
  EXPECT_EQ(directory_.owner(id), std::nullopt);
}

// ---------------------------------------------------------------- bounds

TEST_F(SessionTableTest, ReplayFramesBoundKeepsTheNewest) {
  options_.replay_frames = 4;
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  record(s, 10);
  EXPECT_EQ(s.replay.count(), 4u);
  EXPECT_EQ(s.replay.first_seq(), 7u);
  EXPECT_TRUE(s.replay.covers(6, 10));
  EXPECT_FALSE(s.replay.covers(5, 10));
  expect_gauges_match({&s});
}

TEST_F(SessionTableTest, ReplayBytesBoundKeepsTheNewest) {
  options_.replay_bytes = 1000;  // 9 frames of 4 + 100 bytes
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  record(s, 20, 100);
  EXPECT_EQ(s.replay.count(), 9u);
  EXPECT_EQ(s.replay.first_seq(), 12u);
  EXPECT_LE(s.replay.frame_bytes(), 1000u);
  expect_gauges_match({&s});

  // A frame over the whole budget is handed back intact, and not kept.
  ReplayBuffer::Stored big = table.record(s, payload_for(21, 5000));
  EXPECT_EQ(big.payload, payload_for(21, 5000));
  EXPECT_EQ(s.replay.count(), 0u);
  EXPECT_EQ(s.seq, 21u);
  EXPECT_TRUE(s.replay.covers(21, 21));
  EXPECT_FALSE(s.replay.covers(20, 21));
  expect_gauges_match({&s});
}

TEST_F(SessionTableTest, ReplayOffStillCountsSeq) {
  options_.replay_frames = 0;
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  EXPECT_FALSE(table.replay_enabled());
  ReplayBuffer::Stored stored = table.record(s, "abc");
  EXPECT_FALSE(stored.owner) << "the caller echoes its own bytes";
  EXPECT_EQ(s.seq, 1u);
  EXPECT_EQ(small_.blocks_total(), 0u);
  table.detach(s);
  EXPECT_EQ(resume(s, 1, conn_[1]).result, ResumeResult::kOk);
}

// Three detached sessions of one block each fill 12 KiB of a 16 KiB budget;
// a writer's second block goes over, and the oldest detached one goes.
TEST_F(SessionTableTest, MemoryBudgetEvictsDetachedSessionsOldestFirst) {
  options_.replay_memory = 4 * kSmallBlock;
  SessionTable& table = make_table();
  std::array<Session*, 3> idle{};
  for (size_t i = 0; i < idle.size(); ++i) {
    idle[i] = &table.create(conn_[i]);
    record(*idle[i], 1);
  }
  // Detached in the order 1, 0, 2: eviction follows detach order.
  table.detach(*idle[1]);
  table.detach(*idle[0]);
  table.detach(*idle[2]);
  const std::array<std::string, 3> ids = {std::string(view(idle[0]->id)),
                                          std::string(view(idle[1]->id)),
                                          std::string(view(idle[2]->id))};
  Session& writer = table.create(conn_[3]);
  record(writer, 4, 1000);  // one block: 16 KiB, at the budget
  EXPECT_EQ(metrics_.sessions.evicted_total.get(), 0u);
  record(writer, 1, 1000);  // a second block: over
  EXPECT_EQ(metrics_.sessions.evicted_total.get(), 1u);
  EXPECT_LE(memory_gauge(), options_.replay_memory);
  EXPECT_EQ(metrics_.sessions.detached.get(), 2u);
  EXPECT_EQ(table.resume(ids[1], 1, conn_[4]).result, ResumeResult::kUnknown)
      << "the first detached is evicted first";
  record(writer, 4, 1000);  // a third block: over again
  EXPECT_EQ(metrics_.sessions.evicted_total.get(), 2u);
  EXPECT_EQ(table.resume(ids[0], 1, conn_[4]).result, ResumeResult::kUnknown);
  EXPECT_EQ(table.resume(ids[2], 0, conn_[4]).result, ResumeResult::kOk) << "the newest is kept";
  EXPECT_EQ(writer.replay.count(), 9u) << "the writer lost nothing while others could go";
  expect_gauges_match({idle[2], &writer});
}

// Nothing detached to evict: the writer gives up its own oldest frames.
TEST_F(SessionTableTest, MemoryBudgetTrimsTheWriterWhenNothingIsDetached) {
  options_.replay_memory = 2 * kSmallBlock;
  SessionTable& table = make_table();
  Session& other = table.create(conn_[0]);
  record(other, 1);  // attached: never evicted
  Session& writer = table.create(conn_[1]);
  record(writer, 40, 1000);
  EXPECT_LE(memory_gauge(), options_.replay_memory);
  EXPECT_EQ(metrics_.sessions.evicted_total.get(), 0u);
  EXPECT_EQ(other.replay.count(), 1u);
  EXPECT_GT(writer.replay.count(), 0u) << "the newest frames are kept";
  EXPECT_EQ(writer.replay.first_seq() + writer.replay.count() - 1, 40u);
  expect_gauges_match({&other, &writer});
}

// ------------------------------------------------------- discard, expiry

TEST_F(SessionTableTest, DiscardFreesTheReplayMemory) {
  SessionTable& table = make_table();
  Session& a = table.create(conn_[0]);
  Session& b = table.create(conn_[1]);
  record(a, 100);
  record(b, 3, 6000);  // large-pool blocks too
  table.detach(b);
  table.discard(a);
  table.discard(b);
  EXPECT_EQ(memory_gauge(), 0u);
  EXPECT_EQ(frame_bytes_gauge(), 0u);
  EXPECT_EQ(metrics_.sessions.attached.get(), 0u);
  EXPECT_EQ(metrics_.sessions.detached.get(), 0u);
  table.reap();
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(small_.blocks_free(), small_.blocks_total());
  EXPECT_EQ(large_.blocks_free(), large_.blocks_total());
}

TEST_F(SessionTableTest, DetachedSessionExpiresAfterTheWindow) {
  options_.resume_window = 20ms;
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  record(s, 3);
  const std::string id(view(s.id));
  table.detach(s);
  run_for(200ms);
  EXPECT_EQ(metrics_.sessions.expired_total.get(), 1u);
  EXPECT_EQ(metrics_.sessions.detached.get(), 0u);
  EXPECT_EQ(memory_gauge(), 0u);
  EXPECT_EQ(table.resume(id, 3, conn_[1]).result, ResumeResult::kUnknown);
  table.reap();
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(SessionTableTest, ResumeStopsTheExpiryTimer) {
  options_.resume_window = 20ms;
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  table.detach(s);
  ASSERT_EQ(resume(s, 0, conn_[1]).result, ResumeResult::kOk);
  run_for(100ms);
  EXPECT_EQ(metrics_.sessions.expired_total.get(), 0u);
  EXPECT_EQ(resume(s, 0, conn_[2]).result, ResumeResult::kTakenOver);
}

TEST_F(SessionTableTest, ZeroResumeWindowDiscardsOnDetach) {
  options_.resume_window = 0ms;
  SessionTable& table = make_table();
  Session& s = table.create(conn_[0]);
  record(s, 2);
  const std::string id(view(s.id));
  table.detach(s);
  EXPECT_EQ(metrics_.sessions.detached.get(), 0u);
  EXPECT_EQ(memory_gauge(), 0u);
  EXPECT_EQ(table.resume(id, 2, conn_[1]).result, ResumeResult::kUnknown);
}

TEST_F(SessionTableTest, DestroyingTheTableReturnsItsMemory) {
  SessionTable& table = make_table();
  Session& a = table.create(conn_[0]);
  record(a, 50);
  Session& b = table.create(conn_[1]);
  record(b, 2, 6000);
  table.detach(b);
  table_.reset();
  EXPECT_EQ(memory_gauge(), 0u);
  EXPECT_EQ(frame_bytes_gauge(), 0u);
  EXPECT_EQ(small_.blocks_free(), small_.blocks_total());
  EXPECT_EQ(large_.blocks_free(), large_.blocks_total());
}

// ------------------------------------------------------- session store

// A store that answers nothing: the table's own bookkeeping is what is tested.
struct SilentStore final : SessionStore {
  explicit SilentStore(Deps deps) : SessionStore(std::move(deps)) {}
  bool available() const noexcept override { return true; }
  void create(StoreWaiter&, std::string_view, const StoreToken&, uint64_t) override {}
  void append(StoreWaiter&, std::string_view, const StoreToken&, uint64_t, uint64_t,
              std::span<const std::string_view>, uint64_t) override {}
  void send_turn_batch() override {}
  void resume(StoreWaiter&, std::string_view, uint64_t, const StoreToken&) override {}
  void forget(StoreWaiter&) noexcept override {}
  void renew_lease(std::string_view, const StoreToken&) override {}
  void detach(std::string_view, const StoreToken&) override { ++detached; }
  void remove(StoreWaiter*, std::string_view, const StoreToken&, uint64_t) override { ++removed; }
  void on_tick(uint64_t) override {}
  int detached = 0;
  int removed = 0;
};

class StoredSessionTableTest : public SessionTableTest {
 protected:
  SessionTable& make_stored_table() {
    options_.session_store.redis = true;
    store_ = std::make_unique<SilentStore>(
        SessionStore::Deps{base_.get(), options_, metrics_.session_store, metrics_.store_round_trip,
                           loop_clock_, 0, [](std::string_view, std::string_view) {}});
    resume_window_ = CommonTimeout(base_.get(), options_.resume_window);
    table_ = std::make_unique<SessionTable>(SessionTable::Deps{base_.get(),
                                                               options_,
                                                               metrics_.sessions,
                                                               {small_, large_},
                                                               ids_,
                                                               resume_window_,
                                                               loop_clock_,
                                                               directory_,
                                                               kThisReactor,
                                                               store_.get(),
                                                               &metrics_.session_store});
    return *table_;
  }
  std::unique_ptr<SilentStore> store_;
};

// A session discarded earlier in the same loop turn (doomed, not yet
// reaped) and granted again by the store under the same id: the new copy
// takes its place (the kill test's use-after-free: the new copy was freed).
TEST_F(StoredSessionTableTest, AStoreResumeReplacesACopyDiscardedThisTurn) {
  SessionTable& table = make_stored_table();
  FakeHolders holders;
  Session& first = table.create(holders[0]);
  ASSERT_TRUE(table.store_new(first, 1));
  const std::string id(view(first.id));
  table.discard(first);  // FLUX_BYE: doomed until reap()
  EXPECT_EQ(store_->removed, 1);
  const std::vector<std::string_view> frames = {"a", "b"};
  Session& again = table.adopt_stored(id, store_->next_token(), 2, 0, frames, holders[1]);
  EXPECT_EQ(view(again.id), id);
  EXPECT_EQ(again.seq, 2u);
  EXPECT_EQ(again.replay.count(), 2u);
  table.reap();  // must not free the new copy
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(view(again.id), id);
  table.detach(again);  // a stored session leaves this node when it detaches
  EXPECT_EQ(store_->detached, 1);
  table.reap();
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(metrics_.sessions.attached.get(), 0u);
}

}  // namespace
}  // namespace flux
