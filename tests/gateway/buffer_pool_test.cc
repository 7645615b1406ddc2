// BufferPool: blocks are counted when they come from the heap and only then,
// recycled through the free list, kept alive by their last reference, and
// given back by decay() only when recent use did not need them.
//
// The metrics are the witness throughout: block_allocations_total is the
// gateway's "buffer allocation rate", so every test checks it moves exactly
// when the pool grows and never otherwise.

#include "gateway/buffer_pool.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gateway/out_queue.h"

namespace flux {
namespace {

constexpr size_t kBlockSize = 16 * 1024;

class BufferPoolTest : public ::testing::Test {
 protected:
  // The gauges must always partition the pool: every block is either in use
  // or free, never both, never neither.
  void expect_gauges_consistent(const BufferPool& pool) const {
    const size_t in_use = pool.blocks_total() - pool.blocks_free();
    EXPECT_EQ(metrics_.block_bytes_in_use.get(), in_use * pool.block_size());
    EXPECT_EQ(metrics_.block_bytes_free.get(), pool.blocks_free() * pool.block_size());
    EXPECT_EQ(metrics_.block_allocations_total.get() - metrics_.block_releases_total.get(),
              pool.blocks_total())
        << "blocks owned == blocks ever made - blocks given back";
  }

  PoolMetrics metrics_;
};

// ------------------------------------------------------------ preallocation

TEST_F(BufferPoolTest, PreallocationIsCountedAsAllocations) {
  BufferPool pool(kBlockSize, 4, metrics_);
  EXPECT_EQ(pool.block_size(), kBlockSize);
  EXPECT_EQ(pool.blocks_total(), 4u);
  EXPECT_EQ(pool.blocks_free(), 4u);
  EXPECT_EQ(metrics_.block_allocations_total.get(), 4u);
  EXPECT_EQ(metrics_.block_acquires_total.get(), 0u);
  EXPECT_EQ(metrics_.block_bytes_free.get(), 4 * kBlockSize);
  EXPECT_EQ(metrics_.block_bytes_in_use.get(), 0u);
}

TEST_F(BufferPoolTest, EmptyPoolAllocatesNothingUpFront) {
  BufferPool pool(kBlockSize, 0, metrics_);
  EXPECT_EQ(pool.blocks_total(), 0u);
  EXPECT_EQ(metrics_.block_allocations_total.get(), 0u);
  EXPECT_EQ(metrics_.block_bytes_free.get(), 0u);
  EXPECT_EQ(metrics_.block_bytes_in_use.get(), 0u);
}

// ---------------------------------------------------------------- recycling

TEST_F(BufferPoolTest, AcquireAndReleaseRecycleWithoutAllocating) {
  BufferPool pool(kBlockSize, 2, metrics_);
  std::set<std::byte*> original;
  {
    BlockRef a = pool.acquire(), b = pool.acquire();
    original = {a.data(), b.data()};
  }
  ASSERT_EQ(original.size(), 2u);

  constexpr int kRounds = 1000;
  for (int i = 0; i < kRounds; ++i) {
    BlockRef a = pool.acquire();
    BlockRef b = pool.acquire();
    // Recycling means handing back the very same memory, not a fresh block.
    EXPECT_TRUE(original.count(a.data()) == 1 && original.count(b.data()) == 1);
    EXPECT_NE(a.data(), b.data());
  }
  EXPECT_EQ(metrics_.block_allocations_total.get(), 2u);
  EXPECT_EQ(metrics_.block_acquires_total.get(), 2u + 2u * kRounds);
  EXPECT_EQ(pool.blocks_free(), 2u);
  expect_gauges_consistent(pool);
}

TEST_F(BufferPoolTest, ReleasedBlockIsTheOneHandedOutNext) {
  BufferPool pool(kBlockSize, 1, metrics_);
  std::byte* first = nullptr;
  {
    BlockRef ref = pool.acquire();
    first = ref.data();
    EXPECT_EQ(pool.blocks_free(), 0u);
  }
  EXPECT_EQ(pool.blocks_free(), 1u);
  BlockRef again = pool.acquire();
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(metrics_.block_allocations_total.get(), 1u);
}

// ------------------------------------------------------------------- growth

TEST_F(BufferPoolTest, GrowthWhenEmptyIsCountedExactlyOncePerBlock) {
  BufferPool pool(kBlockSize, 2, metrics_);
  std::vector<BlockRef> held;
  for (size_t i = 1; i <= 10; ++i) {
    held.push_back(pool.acquire());
    // Two blocks were there already; each acquire past them adds exactly one.
    EXPECT_EQ(metrics_.block_allocations_total.get(), std::max<size_t>(2, i)) << "acquire #" << i;
    EXPECT_EQ(pool.blocks_total(), std::max<size_t>(2, i));
    EXPECT_EQ(pool.blocks_free(), i < 2 ? 2 - i : 0);
    expect_gauges_consistent(pool);
  }
  held.clear();
  EXPECT_EQ(pool.blocks_free(), 10u);

  // Now that the pool has grown to the working set, the same load allocates nothing.
  for (int i = 0; i < 10; ++i) held.push_back(pool.acquire());
  EXPECT_EQ(metrics_.block_allocations_total.get(), 10u);
  EXPECT_EQ(metrics_.block_acquires_total.get(), 20u);
  expect_gauges_consistent(pool);
}

TEST_F(BufferPoolTest, GrowthFromNothing) {
  BufferPool pool(kBlockSize, 0, metrics_);
  BlockRef a = pool.acquire();
  EXPECT_TRUE(a);
  EXPECT_EQ(metrics_.block_allocations_total.get(), 1u);
  EXPECT_EQ(pool.blocks_total(), 1u);
  EXPECT_EQ(pool.blocks_free(), 0u);
  expect_gauges_consistent(pool);
}

// ------------------------------------------------------------------- gauges

TEST_F(BufferPoolTest, GaugesFollowEveryAcquireAndRelease) {
  BufferPool pool(kBlockSize, 3, metrics_);
  std::vector<BlockRef> held;
  for (size_t i = 1; i <= 5; ++i) {
    held.push_back(pool.acquire());
    EXPECT_EQ(metrics_.block_bytes_in_use.get(), i * kBlockSize);
    EXPECT_EQ(metrics_.block_bytes_free.get(), (i < 3 ? 3 - i : 0) * kBlockSize);
    expect_gauges_consistent(pool);
  }
  while (!held.empty()) {
    held.pop_back();
    EXPECT_EQ(metrics_.block_bytes_in_use.get(), held.size() * kBlockSize);
    EXPECT_EQ(metrics_.block_bytes_free.get(), (5 - held.size()) * kBlockSize);
    expect_gauges_consistent(pool);
  }
}

TEST_F(BufferPoolTest, SharingDoesNotMoveTheGauges) {
  BufferPool pool(kBlockSize, 2, metrics_);
  BlockRef a = pool.acquire();
  {
    BlockRef b = a.share();
    BlockRef c = b.share();
    EXPECT_EQ(metrics_.block_bytes_in_use.get(), kBlockSize);
    EXPECT_EQ(metrics_.block_acquires_total.get(), 1u) << "share() is not an acquire";
  }
  EXPECT_EQ(metrics_.block_bytes_in_use.get(), kBlockSize) << "a still holds the block";
  a.reset();
  EXPECT_EQ(metrics_.block_bytes_in_use.get(), 0u);
  expect_gauges_consistent(pool);
}

TEST_F(BufferPoolTest, PoolsSharingOneMetricsBlockAddUp) {
  // A reactor's read pool and replay pool report into one PoolMetrics: each
  // gauge must be the sum over both pools, never the last writer's view.
  BufferPool small(kBlockSize, 2, metrics_);
  BufferPool large(4 * kBlockSize, 1, metrics_);
  EXPECT_EQ(metrics_.block_allocations_total.get(), 3u);
  EXPECT_EQ(metrics_.block_bytes_free.get(), 2 * kBlockSize + 4 * kBlockSize);

  BlockRef a = small.acquire();
  BlockRef b = large.acquire();
  EXPECT_EQ(metrics_.block_bytes_in_use.get(), kBlockSize + 4 * kBlockSize);
  EXPECT_EQ(metrics_.block_bytes_free.get(), kBlockSize);
  BlockRef c = large.acquire();  // grows the large pool
  EXPECT_EQ(metrics_.block_allocations_total.get(), 4u);
  EXPECT_EQ(metrics_.block_bytes_in_use.get(), kBlockSize + 8 * kBlockSize);

  a.reset();
  b.reset();
  c.reset();
  EXPECT_EQ(metrics_.block_bytes_in_use.get(), 0u);
  EXPECT_EQ(metrics_.block_bytes_free.get(), 2 * kBlockSize + 8 * kBlockSize);
  EXPECT_EQ(metrics_.block_acquires_total.get(), 3u);
}

TEST_F(BufferPoolTest, ADestroyedPoolLeavesTheGauges) {
  BufferPool kept(kBlockSize, 2, metrics_);
  BlockRef held = kept.acquire();
  {
    BufferPool gone(2 * kBlockSize, 3, metrics_);
    BlockRef used = gone.acquire();
  }
  EXPECT_EQ(metrics_.block_bytes_in_use.get(), kBlockSize) << "only `kept`'s block is in use";
  EXPECT_EQ(metrics_.block_bytes_free.get(), kBlockSize) << "only `kept`'s free block is left";
  EXPECT_EQ(metrics_.block_allocations_total.get(), 5u) << "a counter never goes back";
}

// ---------------------------------------------------- references and unique

TEST_F(BufferPoolTest, ShareKeepsTheBlockAliveUntilTheLastReference) {
  BufferPool pool(kBlockSize, 1, metrics_);
  BlockRef owner = pool.acquire();
  std::memset(owner.data(), 0x5a, kBlockSize);
  BlockRef echo1 = owner.share();
  BlockRef echo2 = echo1.share();
  EXPECT_EQ(echo1.data(), owner.data());
  EXPECT_EQ(echo2.data(), owner.data());

  owner.reset();
  EXPECT_FALSE(owner);
  EXPECT_EQ(pool.blocks_free(), 0u) << "two echoes still point into the block";
  echo1.reset();
  EXPECT_EQ(pool.blocks_free(), 0u) << "one echo still points into the block";
  // Nobody could have overwritten it: it never went back to the free list.
  EXPECT_EQ(echo2.data()[0], std::byte{0x5a});
  EXPECT_EQ(echo2.data()[kBlockSize - 1], std::byte{0x5a});

  echo2.reset();
  EXPECT_EQ(pool.blocks_free(), 1u);
  expect_gauges_consistent(pool);
}

TEST_F(BufferPoolTest, UniqueIsTrueOnlyForASoleReference) {
  BufferPool pool(kBlockSize, 1, metrics_);
  BlockRef a = pool.acquire();
  EXPECT_TRUE(a.unique());
  BlockRef b = a.share();
  EXPECT_FALSE(a.unique());
  EXPECT_FALSE(b.unique());
  {
    BlockRef c = b.share();
    EXPECT_FALSE(c.unique());
  }
  EXPECT_FALSE(a.unique());
  b.reset();
  EXPECT_TRUE(a.unique());
}

TEST_F(BufferPoolTest, DroppingTheOriginalLeavesTheShareUnique) {
  BufferPool pool(kBlockSize, 1, metrics_);
  BlockRef a = pool.acquire();
  BlockRef b = a.share();
  a.reset();
  EXPECT_TRUE(b.unique());
  EXPECT_EQ(pool.blocks_free(), 0u);
}

TEST_F(BufferPoolTest, MoveTransfersTheReferenceWithoutCounting) {
  BufferPool pool(kBlockSize, 2, metrics_);
  BlockRef a = pool.acquire();
  std::byte* bytes = a.data();
  BlockRef b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  ASSERT_TRUE(b);
  EXPECT_EQ(b.data(), bytes);
  EXPECT_TRUE(b.unique()) << "a move must not add a reference";
  EXPECT_EQ(pool.blocks_free(), 1u);
}

TEST_F(BufferPoolTest, MoveAssignmentReleasesTheOverwrittenBlock) {
  BufferPool pool(kBlockSize, 2, metrics_);
  BlockRef a = pool.acquire();
  BlockRef b = pool.acquire();
  EXPECT_EQ(pool.blocks_free(), 0u);
  std::byte* b_bytes = b.data();
  a = std::move(b);
  EXPECT_EQ(pool.blocks_free(), 1u) << "a's old block had no other reference";
  EXPECT_EQ(a.data(), b_bytes);
  EXPECT_TRUE(a.unique());
  EXPECT_FALSE(b);  // NOLINT(bugprone-use-after-move)
  expect_gauges_consistent(pool);
}

TEST_F(BufferPoolTest, EmptyReferenceIsFalseAndResetIsHarmless) {
  BlockRef empty;
  EXPECT_FALSE(empty);
  empty.reset();
  empty.reset();
  EXPECT_FALSE(empty);
}

// ----------------------------------------- raw hand-over (intrusive chains)

TEST_F(BufferPoolTest, ReleaseHandsTheReferenceOverWithoutDroppingIt) {
  BufferPool pool(kBlockSize, 1, metrics_);
  BlockRef ref = pool.acquire();
  std::byte* bytes = ref.data();
  Block* raw = ref.release();
  ASSERT_NE(raw, nullptr);
  EXPECT_FALSE(ref);
  EXPECT_EQ(pool.blocks_free(), 0u) << "a released pointer still owns its reference";
  EXPECT_EQ(raw->refs, 1u);

  BlockRef back = BlockRef::from_released(raw);
  EXPECT_EQ(back.get(), raw);
  EXPECT_EQ(back.data(), bytes);
  EXPECT_TRUE(back.unique()) << "from_released takes the reference over, it does not add one";
  back.reset();
  EXPECT_EQ(pool.blocks_free(), 1u);
  expect_gauges_consistent(pool);
}

TEST_F(BufferPoolTest, ShareOfAddsAReferenceToARawBlock) {
  BufferPool pool(kBlockSize, 1, metrics_);
  BlockRef owner = pool.acquire();
  BlockRef other = BlockRef::share_of(owner.get());
  EXPECT_EQ(other.data(), owner.data());
  EXPECT_FALSE(owner.unique());
  owner.reset();
  EXPECT_EQ(pool.blocks_free(), 0u);
  EXPECT_TRUE(other.unique());
  other.reset();
  EXPECT_EQ(pool.blocks_free(), 1u);
}

TEST_F(BufferPoolTest, CapacityIsTheBlockSize) {
  BufferPool pool(kBlockSize, 1, metrics_);
  BlockRef ref = pool.acquire();
  EXPECT_EQ(ref.get()->capacity(), kBlockSize);
}

TEST_F(BufferPoolTest, AcquireHandsOutAClearedChain) {
  // A replay buffer leaves its chain fields behind; the next holder of the
  // block must not inherit a link into someone else's chain.
  BufferPool pool(kBlockSize, 2, metrics_);
  {
    BlockRef a = pool.acquire(), b = pool.acquire();
    a.get()->chain_next = b.get();
    a.get()->chain_used = 1234;
    b.get()->chain_used = 99;
  }
  BlockRef a = pool.acquire(), b = pool.acquire();
  for (const BlockRef* ref : {&a, &b}) {
    EXPECT_EQ(ref->get()->chain_next, nullptr);
    EXPECT_EQ(ref->get()->chain_used, 0u);
  }
}

// ------------------------------------------------------------------- memory

TEST_F(BufferPoolTest, BlocksAreDistinctAndHoldBlockSizeBytes) {
  BufferPool pool(kBlockSize, 4, metrics_);
  std::vector<BlockRef> held;
  for (int i = 0; i < 8; ++i) held.push_back(pool.acquire());
  std::vector<std::byte*> starts;
  for (size_t i = 0; i < held.size(); ++i) {
    // Writing the whole capacity is in bounds (ASan builds check this).
    std::memset(held[i].data(), static_cast<int>(i), kBlockSize);
    starts.push_back(held[i].data());
  }
  std::sort(starts.begin(), starts.end(), std::less<>());
  for (size_t i = 1; i < starts.size(); ++i)
    EXPECT_GE(static_cast<size_t>(starts[i] - starts[i - 1]), kBlockSize) << "blocks overlap";
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_EQ(held[i].data()[0], std::byte(i));
    EXPECT_EQ(held[i].data()[kBlockSize - 1], std::byte(i));
  }
}

// -------------------------------------------------------------------- decay
//
// Time is passed in (simulated): a tick every 100 ms, as the reactor calls it.

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kTick = 100 * kMs;
constexpr uint64_t kStart = 1'000'000 * kMs;  // any monotonic origin
constexpr uint64_t kWindow = DecaySchedule::kWindowNs;

std::vector<BlockRef> take(BufferPool& pool, size_t n) {
  std::vector<BlockRef> held;
  for (size_t i = 0; i < n; ++i) held.push_back(pool.acquire());
  return held;
}

// Ticks from `from` (inclusive) until `until` (exclusive); returns the blocks
// released and the time of the next tick.
template <typename Pool>
std::pair<size_t, uint64_t> tick_until(Pool& pool, uint64_t from, uint64_t until) {
  size_t released = 0;
  for (; from < until; from += kTick) released += pool.decay(from);
  return {released, from};
}

TEST_F(BufferPoolTest, DecayKeepsEveryBlockWhileThePeakIsRecent) {
  BufferPool pool(kBlockSize, 0, metrics_);
  take(pool, 100);  // peak of 100, all free again at once
  ASSERT_EQ(pool.blocks_free(), 100u);
  // The peak stays recent for a whole window (at least kWindow - 1 slot).
  auto [released, now] = tick_until(pool, kStart, kStart + kWindow - DecaySchedule::kSlotNs);
  EXPECT_EQ(released, 0u);
  EXPECT_EQ(pool.blocks_total(), 100u);
  EXPECT_EQ(pool.recent_peak(), 100u);
  EXPECT_EQ(metrics_.block_releases_total.get(), 0u);
  expect_gauges_consistent(pool);
  (void)now;
}

TEST_F(BufferPoolTest, DecayGivesTheExcessBackGraduallyOnceThePeakIsOld) {
  BufferPool pool(kBlockSize, 0, metrics_);
  take(pool, 1000);
  uint64_t now = tick_until(pool, kStart, kStart + kWindow + 2 * DecaySchedule::kSlotNs).second;
  ASSERT_LT(pool.blocks_total(), 1000u) << "the peak has left the window";
  ASSERT_GT(pool.blocks_total(), 0u) << "but not all at once";

  // From here on, every call frees a share of what is left, never all of it
  // in one go while much is left, until nothing is.
  size_t calls = 0;
  while (pool.blocks_total() > 0 && calls < 1000) {
    const size_t before = pool.blocks_total();
    const size_t released = pool.decay(now += kTick);
    ++calls;
    EXPECT_GE(released, 1u) << "every call makes progress";
    if (before >= 40) {
      EXPECT_LT(released, before / 4) << "a fraction, not a cliff: call " << calls;
    }
    expect_gauges_consistent(pool);
  }
  EXPECT_EQ(pool.blocks_total(), 0u);
  // 2 s time constant: 1000 blocks are gone within 20 s of ticks.
  EXPECT_LE(calls, 200u);
  EXPECT_EQ(metrics_.block_releases_total.get(), 1000u);
  EXPECT_EQ(metrics_.block_bytes_free.get(), 0u);
  EXPECT_EQ(metrics_.block_bytes_in_use.get(), 0u);
}

TEST_F(BufferPoolTest, DecayFullyReleasesWithinThirtySecondsOfTheLastUse) {
  BufferPool pool(BufferPool::block_size_for(65536), 0, metrics_);
  take(pool, 3000);  // ~200 MB of default-size blocks
  auto [released, now] = tick_until(pool, kStart, kStart + kWindow + 20'000 * kMs);
  EXPECT_EQ(released, 3000u);
  EXPECT_EQ(pool.blocks_total(), 0u);
  // Even after a stall, no call frees more than its byte budget (bounded
  // time per tick).
  BufferPool again(BufferPool::block_size_for(65536), 0, metrics_);
  take(again, 3000);
  again.decay(now);
  EXPECT_EQ(again.decay(now + 3 * kWindow), 0u) << "the peak may have been just now";
  EXPECT_EQ(again.decay(now + 6 * kWindow),
            BufferPool::kMaxReleaseBytesPerCall / again.block_size());
}

TEST_F(BufferPoolTest, DecayNeverFreesABlockInUse) {
  BufferPool pool(kBlockSize, 0, metrics_);
  std::vector<BlockRef> held = take(pool, 200);
  for (size_t i = 0; i < held.size(); ++i) std::memset(held[i].data(), int(i & 0xff), kBlockSize);
  held.resize(30);  // 170 free, 30 still lent out
  tick_until(pool, kStart, kStart + kWindow + 60'000 * kMs);
  EXPECT_EQ(pool.blocks_total(), 30u) << "free blocks go, lent ones stay";
  EXPECT_EQ(pool.blocks_free(), 0u);
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_EQ(held[i].data()[0], std::byte(i & 0xff));
    EXPECT_EQ(held[i].data()[kBlockSize - 1], std::byte(i & 0xff));
  }
  expect_gauges_consistent(pool);
  held.clear();  // they return to the pool, and are its free blocks now
  EXPECT_EQ(pool.blocks_free(), 30u);
  expect_gauges_consistent(pool);
}

TEST_F(BufferPoolTest, DecayNeverGoesBelowThePreallocatedBlocks) {
  BufferPool pool(kBlockSize, 64, metrics_);
  take(pool, 500);
  tick_until(pool, kStart, kStart + kWindow + 60'000 * kMs);
  EXPECT_EQ(pool.blocks_total(), 64u);
  EXPECT_EQ(metrics_.block_releases_total.get(), 500u - 64u);
  expect_gauges_consistent(pool);
}

TEST_F(BufferPoolTest, ANewPeakStopsTheDecayAtItsLevel) {
  BufferPool pool(kBlockSize, 0, metrics_);
  take(pool, 400);
  uint64_t now = tick_until(pool, kStart, kStart + kWindow + 2'000 * kMs).second;
  const size_t mid = pool.blocks_total();
  ASSERT_LT(mid, 400u);
  ASSERT_GT(mid, 150u);
  take(pool, 150);  // a burst within what the pool still holds: no growth
  EXPECT_EQ(pool.blocks_total(), mid);
  // For a whole window after that burst, 150 blocks are kept however long
  // the decay runs; the rest keeps going.
  now = tick_until(pool, now, now + kWindow - DecaySchedule::kSlotNs).second;
  EXPECT_EQ(pool.blocks_total(), 150u);
  EXPECT_EQ(pool.recent_peak(), 150u);
  tick_until(pool, now, now + 30'000 * kMs);
  EXPECT_EQ(pool.blocks_total(), 0u) << "and it ages out too";
  expect_gauges_consistent(pool);
}

TEST_F(BufferPoolTest, SteadyCyclesWithPeriodicDecayAllocateAndReleaseNothing) {
  BufferPool pool(kBlockSize, 0, metrics_);
  { auto warm = take(pool, 16); }
  const uint64_t allocations = metrics_.block_allocations_total.get();
  uint64_t now = kStart;
  // Two minutes of a load that needs 16 blocks at its busiest moment of
  // every 5 s and 2 most of the time.
  for (int tick = 0; tick < 1200; ++tick, now += kTick) {
    for (int i = 0; i < 20; ++i) {
      BlockRef a = pool.acquire(), b = pool.acquire();
    }
    if (tick % 50 == 0) take(pool, 16);
    EXPECT_EQ(pool.decay(now), 0u) << "tick " << tick;
  }
  EXPECT_EQ(metrics_.block_allocations_total.get(), allocations);
  EXPECT_EQ(metrics_.block_releases_total.get(), 0u);
  EXPECT_EQ(pool.blocks_total(), 16u);
  expect_gauges_consistent(pool);
}

TEST_F(BufferPoolTest, ReleasesAddUpAcrossPoolsSharingOneMetricsBlock) {
  BufferPool small(kBlockSize, 0, metrics_);
  BufferPool large(4 * kBlockSize, 0, metrics_);
  take(small, 50);
  std::vector<BlockRef> kept = take(large, 20);
  kept.resize(5);
  uint64_t now = kStart;
  for (; now < kStart + kWindow + 30'000 * kMs; now += kTick) {
    small.decay(now);
    large.decay(now);
  }
  EXPECT_EQ(metrics_.block_allocations_total.get(), 70u);
  EXPECT_EQ(metrics_.block_releases_total.get(), 50u + 15u);
  EXPECT_EQ(metrics_.block_bytes_in_use.get(), 5 * 4 * kBlockSize);
  EXPECT_EQ(metrics_.block_bytes_free.get(), 0u);
  EXPECT_EQ(small.blocks_total() + large.blocks_total(),
            metrics_.block_allocations_total.get() - metrics_.block_releases_total.get());
}

TEST_F(BufferPoolTest, ReleasedBlocksLeaveTheRestUsable) {
  // Swap-and-pop removal must keep every surviving block reachable and sound.
  BufferPool pool(kBlockSize, 0, metrics_);
  std::vector<BlockRef> held = take(pool, 100);
  std::vector<BlockRef> keep;
  for (size_t i = 0; i < held.size(); i += 3) keep.push_back(std::move(held[i]));
  held.clear();
  uint64_t now = tick_until(pool, kStart, kStart + kWindow + 30'000 * kMs).second;
  ASSERT_EQ(pool.blocks_total(), keep.size());
  keep.clear();
  auto again = take(pool, 34);
  for (auto& ref : again) std::memset(ref.data(), 1, kBlockSize);
  EXPECT_EQ(pool.blocks_total(), 34u) << "the survivors are handed out again, no growth";
  again.clear();
  tick_until(pool, now, now + kWindow + 30'000 * kMs);
  EXPECT_EQ(pool.blocks_total(), 0u);  // the pool's destructor then frees nothing twice (ASan)
}

TEST(DecaySchedule, FirstCallOnlyStartsTheClock) {
  DecaySchedule schedule;
  EXPECT_EQ(schedule.due(kStart + 100 * kWindow, 100, 0, 0, 1000), 0u);
}

TEST(DecaySchedule, AGapLongerThanTheWindowKeepsOnlyThePeakSeenDuringIt) {
  DecaySchedule schedule;
  schedule.note_in_use(50);
  schedule.due(kStart, 50, 0, 0, 1000);
  // A peak seen between two calls, however far apart, counts as recent: it
  // may have happened just before the later one.
  EXPECT_EQ(schedule.due(kStart + 60'000 * kMs, 50, 10, 0, 1000), 0u);
  EXPECT_EQ(schedule.recent_peak(), 50u);
  schedule.note_in_use(40);
  EXPECT_EQ(schedule.due(kStart + 120'000 * kMs, 50, 0, 0, 1000), 10u) << "50 held, 40 needed";
  EXPECT_EQ(schedule.recent_peak(), 40u);
  // The slots of the gap itself saw only what was in use at its end.
  EXPECT_EQ(schedule.due(kStart + 180'000 * kMs, 40, 0, 0, 1000), 40u);
  EXPECT_EQ(schedule.recent_peak(), 0u);
}

TEST(DecaySchedule, ReleasesAShareProportionalToTheTimeSinceTheLastCall) {
  DecaySchedule schedule;
  schedule.due(kStart, 1000, 0, 0, 100'000);
  uint64_t now = kStart + 2 * kWindow;
  schedule.due(now, 1000, 0, 0, 0);  // window aged out; released nothing (cap 0)
  // 100 ms of a 2 s time constant: 5% of 1000.
  EXPECT_EQ(schedule.due(now + kTick, 1000, 0, 0, 100'000), 50u);
  // A stall of several seconds releases everything due, up to the cap.
  EXPECT_EQ(schedule.due(now + kTick + 5'000 * kMs, 950, 0, 0, 100'000), 950u);
  EXPECT_EQ(schedule.due(now + kTick + 10'000 * kMs, 950, 0, 100, 300), 300u);
}

// -------------------------------------------------------- decay: real memory

// Resident set of this process, from /proc/self/status (VmRSS), in bytes.
size_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

#ifdef FLUX_SANITIZED
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

double mib(size_t bytes) {
  return static_cast<double>(bytes) / 1048576.0;
}

// Grows a pool by ~200 MB of written blocks, lets it go idle, decays it and
// reads the RSS: the memory must really leave the process.
void expect_rss_returns(size_t block_size, PoolMetrics& metrics) {
  constexpr size_t kGrowth = 200u << 20;
  malloc_trim(0);
  const size_t before = resident_bytes();
  size_t peak = 0;
  {
    BufferPool pool(block_size, 0, metrics);
    {
      std::vector<BlockRef> held = take(pool, kGrowth / block_size);
      for (auto& ref : held) std::memset(ref.data(), 0x5a, block_size);  // make it resident
      peak = resident_bytes();
    }
    tick_until(pool, kStart, kStart + kWindow + 30'000 * kMs);
    ASSERT_EQ(pool.blocks_total(), 0u);
    const size_t after = resident_bytes();
    std::printf("block %zu B: RSS before %.1f MiB, grown %.1f MiB, after decay %.1f MiB\n",
                block_size, mib(before), mib(peak), mib(after));
    EXPECT_GE(peak, before + kGrowth * 3 / 4) << "the blocks were resident";
    // The pool is still alive: what it gave back left the process. Under
    // ASan, unmapping writes the range's shadow (1 byte per 8), which stays.
    const size_t slack = (16u << 20) + (kSanitized ? kGrowth / 8 : 0);
    EXPECT_LE(after, before + slack) << "RSS must come back near where it started";
  }
}

TEST_F(BufferPoolTest, DecayReturnsMappedBlocksToTheKernel) {
  // Default-size (68 KiB) blocks: one mapping each, unmapped on release.
  ASSERT_GE(BufferPool::block_size_for(65536), BlockBytes::kMapMinimum);
  expect_rss_returns(BufferPool::block_size_for(65536), metrics_);
}

TEST_F(BufferPoolTest, DecayReturnsHeapBlocksToTheKernel) {
#ifdef FLUX_SANITIZED
  GTEST_SKIP() << "ASan's allocator quarantines freed heap memory (256 MiB) and ignores "
                  "malloc_trim; the mapped-block test covers decay under sanitizers";
#endif
  ASSERT_LT(kBlockSize, BlockBytes::kMapMinimum);
  expect_rss_returns(kBlockSize, metrics_);
}

// ---------------------------------------------------- decay: FrameNodePool

TEST(FrameNodePoolDecay, IdleChunksBeyondTheRecentPeakAreFreedGradually) {
  PoolMetrics metrics;
  FrameNodePool nodes(metrics);
  std::vector<OutFrame*> out;
  for (size_t i = 0; i < 100 * FrameNodePool::kChunk; ++i) out.push_back(nodes.acquire());
  for (OutFrame* f : out) nodes.release(f);
  ASSERT_EQ(nodes.chunks(), 100u);
  uint64_t now = tick_until(nodes, kStart, kStart + kWindow - DecaySchedule::kSlotNs).second;
  EXPECT_EQ(nodes.chunks(), 100u) << "the peak is recent";
  size_t first = 0;
  while (first == 0 && now < kStart + 2 * kWindow) first = nodes.decay(now += kTick);
  EXPECT_GT(first, 0u);
  EXPECT_LT(first, 20u) << "a fraction per call";
  tick_until(nodes, now, now + 30'000 * kMs);
  EXPECT_EQ(nodes.chunks(), 0u);
  EXPECT_EQ(metrics.frame_node_releases_total.get(), 100u);
  EXPECT_EQ(metrics.frame_node_allocations_total.get(), 100u);
  // The pool works from nothing again.
  OutFrame* f = nodes.acquire();
  EXPECT_EQ(nodes.chunks(), 1u);
  nodes.release(f);
}

TEST(FrameNodePoolDecay, NodesInUseKeepTheirChunksAndTheRestStaysSound) {
  PoolMetrics metrics;
  FrameNodePool nodes(metrics);
  std::vector<OutFrame*> out;
  for (size_t i = 0; i < 50 * FrameNodePool::kChunk; ++i) out.push_back(nodes.acquire());
  for (OutFrame* f : out) nodes.release(f);
  out.clear();
  uint64_t now = kStart;
  // Light traffic throughout: a few nodes out at every tick except some.
  for (int tick = 0; now < kStart + kWindow + 60'000 * kMs; ++tick, now += kTick) {
    if (tick % 7 != 0)
      for (int i = 0; i < 10; ++i) out.push_back(nodes.acquire());
    nodes.decay(now);
    for (OutFrame* f : out) f->head_length = 1;  // every node handed out is live memory
    for (OutFrame* f : out) nodes.release(f);
    out.clear();
  }
  EXPECT_EQ(nodes.chunks(), 1u) << "down to what 10 nodes need";
  // Every node the pool still has is distinct and usable.
  std::set<OutFrame*> seen;
  for (size_t i = 0; i < FrameNodePool::kChunk; ++i) seen.insert(nodes.acquire());
  EXPECT_EQ(seen.size(), FrameNodePool::kChunk);
  EXPECT_EQ(nodes.chunks(), 1u) << "no growth: the kept chunk's nodes are all reachable";
  for (OutFrame* f : seen) nodes.release(f);
}

TEST(FrameNodePoolDecay, ABusyPoolWaitsForAnIdleMoment) {
  PoolMetrics metrics;
  FrameNodePool nodes(metrics);
  std::vector<OutFrame*> out;
  for (size_t i = 0; i < 20 * FrameNodePool::kChunk; ++i) out.push_back(nodes.acquire());
  for (size_t i = 1; i < out.size(); ++i) nodes.release(out[i]);
  // One node stays out: its chunk is unknown, so nothing can go yet.
  uint64_t now = tick_until(nodes, kStart, kStart + kWindow + 30'000 * kMs).second;
  EXPECT_EQ(nodes.chunks(), 20u);
  nodes.release(out[0]);
  tick_until(nodes, now, now + 30'000 * kMs);
  EXPECT_EQ(nodes.chunks(), 0u);
}

TEST(FrameNodePoolDecay, SteadyUseWithPeriodicDecayAllocatesAndReleasesNothing) {
  PoolMetrics metrics;
  FrameNodePool nodes(metrics);
  std::vector<OutFrame*> out;
  uint64_t now = kStart;
  for (int tick = 0; tick < 1200; ++tick, now += kTick) {
    for (int i = 0; i < 300; ++i) out.push_back(nodes.acquire());
    for (OutFrame* f : out) nodes.release(f);
    out.clear();
    EXPECT_EQ(nodes.decay(now), 0u);
  }
  EXPECT_EQ(metrics.frame_node_allocations_total.get(), 2u);
  EXPECT_EQ(metrics.frame_node_releases_total.get(), 0u);
}

// ----------------------------------------------------------- block_size_for

TEST(BlockSizeFor, DefaultMaxFrameGetsWholeFrameRoundedToPages) {
  // 65536 payload + 4 header = 65540, rounded up to 4 KiB pages = 17 pages.
  EXPECT_EQ(BufferPool::block_size_for(65536), 69632u);
}

TEST(BlockSizeFor, SmallFramesGetTheSixteenKiBMinimum) {
  EXPECT_EQ(BufferPool::block_size_for(0), 16384u);
  EXPECT_EQ(BufferPool::block_size_for(1), 16384u);
  EXPECT_EQ(BufferPool::block_size_for(1024), 16384u);
  EXPECT_EQ(BufferPool::block_size_for(16380), 16384u) << "16380 + 4 header fits exactly";
}

TEST(BlockSizeFor, RoundsUpToWholePagesCountingTheHeader) {
  EXPECT_EQ(BufferPool::block_size_for(16381), 20480u) << "16385 bytes need a fifth page";
  EXPECT_EQ(BufferPool::block_size_for(69628), 69632u) << "exact page multiple with header";
  EXPECT_EQ(BufferPool::block_size_for(69629), 73728u);
  EXPECT_EQ(BufferPool::block_size_for(1u << 20), (1u << 20) + 4096u);
  // No 32-bit wrap-around for the largest length a header can carry.
  EXPECT_EQ(BufferPool::block_size_for(std::numeric_limits<uint32_t>::max()),
            (size_t{1} << 32) + 4096u);
}

TEST(BlockSizeFor, InvariantsOverARangeOfFrameSizes) {
  for (uint32_t max_frame = 0; max_frame <= 300'000; max_frame += 97) {
    const size_t size = BufferPool::block_size_for(max_frame);
    const size_t frame = size_t{max_frame} + 4;
    ASSERT_GE(size, frame) << "a whole frame must fit one block, max_frame=" << max_frame;
    ASSERT_EQ(size % 4096, 0u) << max_frame;
    ASSERT_GE(size, 16384u) << max_frame;
    if (frame > 16384) {
      ASSERT_LT(size - frame, 4096u) << "at most one page of slack";
    }
  }
}

}  // namespace
}  // namespace flux
