// BufferPool: blocks are counted when they come from the heap and only then,
// recycled through the free list, and kept alive by their last reference.
//
// The metrics are the witness throughout: block_allocations_total is the
// gateway's "buffer allocation rate", so every test checks it moves exactly
// when the pool grows and never otherwise.

#include "gateway/buffer_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <set>
#include <utility>
#include <vector>

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
    EXPECT_EQ(metrics_.block_allocations_total.get(), pool.blocks_total())
        << "the pool never frees, so allocations ever made == blocks owned";
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

  BlockRef back = BlockRef::adopt(raw);
  EXPECT_EQ(back.get(), raw);
  EXPECT_EQ(back.data(), bytes);
  EXPECT_TRUE(back.unique()) << "adopt takes the reference over, it does not add one";
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
