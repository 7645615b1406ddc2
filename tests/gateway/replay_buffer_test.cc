// ReplayBuffer: the last data frames of a session, packed into pooled blocks.
//
// What a resume relies on: frames are kept consecutive and in order,
// covers() says exactly when a resume can be served whole, for_each_after()
// replays exactly the frames after a given seq. What the memory bounds rely
// on: frame_bytes() is header + payload, memory_bytes() is whole blocks,
// small frames share small blocks, and a block goes back to its pool only
// when both the chain and every Stored reference (a queued echo) let go.
// What the hot path relies on: a warm steady state takes no new blocks.
//
// Each pool has its own PoolMetrics, so a test can tell which one grew.

#include "gateway/replay_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/buffer_pool.h"

namespace flux {
namespace {

constexpr size_t kSmallBlock = 4096;
constexpr size_t kLargeBlock = 16 * 1024;
constexpr size_t kHeader = 4;  // the length kept before each payload

// A payload whose bytes depend on `seq` and on the position, so a frame
// replayed in the wrong place or overwritten is detected.
std::string payload_for(uint64_t seq, size_t size) {
  std::string p(size, '\0');
  for (size_t i = 0; i < size; ++i) p[i] = static_cast<char>((seq * 131 + i * 7) & 0xff);
  return p;
}

// Frames seq first..last, `size` bytes each, as the wire carries them.
std::string wire_run(uint64_t first, uint64_t last, size_t size) {
  std::string out;
  for (uint64_t seq = first; seq <= last; ++seq) {
    const auto n = static_cast<uint32_t>(size);
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((n >> shift) & 0xff));
    out += payload_for(seq, size);
  }
  return out;
}

std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

class ReplayBufferTest : public ::testing::Test {
 protected:
  // Frames seq first..last, each `size` bytes.
  void append_range(ReplayBuffer& buffer, uint64_t first, uint64_t last, size_t size) {
    for (uint64_t seq = first; seq <= last; ++seq) buffer.append(seq, payload_for(seq, size));
  }

  // The payloads of every frame after `after`, in the order visited.
  std::vector<std::string> replay_after(const ReplayBuffer& buffer, uint64_t after) {
    std::vector<std::string> out;
    buffer.for_each_after(after, [&](ReplayBuffer::Stored frame) {
      EXPECT_TRUE(frame.owner) << "a replayed frame must keep its bytes alive";
      out.emplace_back(frame.payload);
    });
    return out;
  }

  size_t small_in_use() const { return small_.blocks_total() - small_.blocks_free(); }
  size_t large_in_use() const { return large_.blocks_total() - large_.blocks_free(); }

  PoolMetrics small_metrics_;
  PoolMetrics large_metrics_;
  BufferPool small_{kSmallBlock, 0, small_metrics_};
  BufferPool large_{kLargeBlock, 0, large_metrics_};
  ReplayBuffer::Pools pools_{small_, large_};
};

// ------------------------------------------------------------ bookkeeping

TEST_F(ReplayBufferTest, EmptyBufferHoldsNothing) {
  ReplayBuffer buffer(pools_);
  EXPECT_EQ(buffer.count(), 0u);
  EXPECT_EQ(buffer.frame_bytes(), 0u);
  EXPECT_EQ(buffer.memory_bytes(), 0u);
  EXPECT_FALSE(buffer.drop_oldest());
  EXPECT_TRUE(replay_after(buffer, 0).empty());
  EXPECT_EQ(small_.blocks_total(), 0u) << "an empty buffer takes no block";
  EXPECT_EQ(large_.blocks_total(), 0u);
}

TEST_F(ReplayBufferTest, AppendKeepsConsecutiveFramesInOrder) {
  ReplayBuffer buffer(pools_);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    ReplayBuffer::Stored stored = buffer.append(seq, payload_for(seq, 10 * seq));
    EXPECT_EQ(stored.payload, payload_for(seq, 10 * seq));
  }
  EXPECT_EQ(buffer.first_seq(), 1u);
  EXPECT_EQ(buffer.count(), 5u);

  const auto all = replay_after(buffer, 0);
  ASSERT_EQ(all.size(), 5u);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    EXPECT_EQ(all[seq - 1], payload_for(seq, 10 * seq)) << "frame " << seq;
  }
  const auto tail = replay_after(buffer, 3);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0], payload_for(4, 40));
  EXPECT_EQ(tail[1], payload_for(5, 50));
  EXPECT_TRUE(replay_after(buffer, 5).empty()) << "nothing after the newest frame";
}

// A run of frames read together goes in as one copy of their wire bytes;
// each of them is a frame of its own for replay, bounds and dropping.
TEST_F(ReplayBufferTest, ARunIsKeptAsItsWireBytesAndReplaysFrameByFrame) {
  ReplayBuffer buffer(pools_);
  buffer.append(1, payload_for(1, 30));
  const std::string run = wire_run(2, 17, 64);
  ASSERT_GE(buffer.room_for_run(68), run.size());
  ReplayBuffer::Stored stored = buffer.append_run(2, bytes_of(run), 16);
  EXPECT_EQ(stored.payload, run) << "the echo of the run is its wire bytes, verbatim";
  EXPECT_NE(stored.payload.data(), run.data()) << "from the kept copy";
  buffer.append(18, payload_for(18, 5));
  EXPECT_EQ(buffer.count(), 18u);
  EXPECT_EQ(buffer.frame_bytes(), (kHeader + 30) + run.size() + (kHeader + 5));

  const auto all = replay_after(buffer, 0);
  ASSERT_EQ(all.size(), 18u);
  EXPECT_EQ(all[0], payload_for(1, 30));
  for (uint64_t seq = 2; seq <= 17; ++seq) EXPECT_EQ(all[seq - 1], payload_for(seq, 64));
  EXPECT_EQ(all[17], payload_for(18, 5));

  for (int i = 0; i < 10; ++i) ASSERT_TRUE(buffer.drop_oldest());
  EXPECT_EQ(buffer.first_seq(), 11u) << "frames of a run drop one by one";
  EXPECT_EQ(replay_after(buffer, 14).front(), payload_for(15, 64));
}

// The room for a run: what the tail block has left, a fresh small block when
// the first frame does not fit there, nothing for a frame of the large pool.
TEST_F(ReplayBufferTest, RoomForARunIsTheTailsFreeSpaceOrAFreshSmallBlock) {
  ReplayBuffer buffer(pools_);
  EXPECT_EQ(buffer.room_for_run(68), kSmallBlock) << "no block yet: a fresh one";
  buffer.append(1, payload_for(1, 1000));
  EXPECT_EQ(buffer.room_for_run(68), kSmallBlock - (kHeader + 1000));
  EXPECT_EQ(buffer.room_for_run(kSmallBlock - kHeader - 1000 + 1), kSmallBlock)
      << "a first frame that does not fit the tail starts a block";
  EXPECT_EQ(buffer.room_for_run(kSmallBlock + 1), 0u) << "a large frame goes alone";

  const std::string run = wire_run(2, 4, 1000);
  buffer.append_run(2, bytes_of(run), 3);
  EXPECT_EQ(buffer.memory_bytes(), kSmallBlock) << "the run filled the tail, no new block";
  EXPECT_EQ(buffer.room_for_run(68), kSmallBlock - 4 * (kHeader + 1000));
}

// The echo is written from the copy the buffer keeps: Stored points into a
// pooled block, not at the caller's bytes.
TEST_F(ReplayBufferTest, StoredPointsIntoThePooledCopy) {
  ReplayBuffer buffer(pools_);
  const std::string input = payload_for(1, 100);
  ReplayBuffer::Stored stored = buffer.append(1, input);
  ASSERT_TRUE(stored.owner);
  EXPECT_EQ(stored.owner.get()->pool, &small_);
  EXPECT_NE(stored.payload.data(), input.data());
  const auto* block_begin = reinterpret_cast<const char*>(stored.owner.data());
  EXPECT_GE(stored.payload.data(), block_begin);
  EXPECT_LE(stored.payload.data() + stored.payload.size(), block_begin + kSmallBlock);
  EXPECT_EQ(stored.payload, input);
}

TEST_F(ReplayBufferTest, EmptyPayloadIsAFrameOfItsOwn) {
  ReplayBuffer buffer(pools_);
  buffer.append(1, "a");
  buffer.append(2, "");
  buffer.append(3, "c");
  EXPECT_EQ(buffer.count(), 3u);
  EXPECT_EQ(buffer.frame_bytes(), 3 * kHeader + 2);
  const auto all = replay_after(buffer, 0);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], "a");
  EXPECT_EQ(all[1], "");
  EXPECT_EQ(all[2], "c");
}

TEST_F(ReplayBufferTest, FrameBytesIsHeaderPlusPayloadOfFramesKept) {
  ReplayBuffer buffer(pools_);
  const std::vector<size_t> sizes = {0, 1, 64, 500, 4092, 5000, 3};
  uint64_t expected = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    buffer.append(i + 1, payload_for(i + 1, sizes[i]));
    expected += kHeader + sizes[i];
    EXPECT_EQ(buffer.frame_bytes(), expected) << "after frame " << i + 1;
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_TRUE(buffer.drop_oldest());
    expected -= kHeader + sizes[i];
    EXPECT_EQ(buffer.frame_bytes(), expected) << "after dropping frame " << i + 1;
  }
  EXPECT_EQ(buffer.frame_bytes(), 0u);
}

TEST_F(ReplayBufferTest, DropOldestAdvancesTheFirstSeq) {
  ReplayBuffer buffer(pools_);
  append_range(buffer, 1, 5, 32);
  ASSERT_TRUE(buffer.drop_oldest());
  ASSERT_TRUE(buffer.drop_oldest());
  EXPECT_EQ(buffer.first_seq(), 3u);
  EXPECT_EQ(buffer.count(), 3u);
  const auto kept = replay_after(buffer, 0);
  ASSERT_EQ(kept.size(), 3u);
  for (size_t i = 0; i < kept.size(); ++i) {
    EXPECT_EQ(kept[i], payload_for(3 + i, 32)) << "kept frame " << i;
  }
  EXPECT_EQ(replay_after(buffer, 2).size(), 3u);
  EXPECT_EQ(replay_after(buffer, 4).size(), 1u);
}

// covers(last_seq, seq): can a client that has `last_seq` be brought up to
// `seq` from this buffer alone?
TEST_F(ReplayBufferTest, CoversExactlyTheResumableLastSeqs) {
  ReplayBuffer buffer(pools_);
  append_range(buffer, 1, 10, 16);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(buffer.drop_oldest());  // keeps 5..10
  ASSERT_EQ(buffer.first_seq(), 5u);
  EXPECT_TRUE(buffer.covers(10, 10)) << "nothing missed";
  EXPECT_TRUE(buffer.covers(9, 10));
  EXPECT_TRUE(buffer.covers(4, 10)) << "frames 5..10 all kept";
  EXPECT_FALSE(buffer.covers(3, 10)) << "frame 4 was dropped";
  EXPECT_FALSE(buffer.covers(0, 10));
}

TEST_F(ReplayBufferTest, EmptyBufferCoversOnlyAClientThatMissedNothing) {
  ReplayBuffer buffer(pools_);
  EXPECT_TRUE(buffer.covers(0, 0));
  EXPECT_FALSE(buffer.covers(0, 1));
  append_range(buffer, 1, 3, 16);
  buffer.clear();
  EXPECT_TRUE(buffer.covers(3, 3));
  EXPECT_FALSE(buffer.covers(2, 3));
}

// After the buffer emptied (or for a session whose early frames were never
// kept), the next append starts the run at its own seq.
TEST_F(ReplayBufferTest, AppendAfterEmptyingStartsAtTheGivenSeq) {
  ReplayBuffer buffer(pools_);
  append_range(buffer, 1, 3, 16);
  while (buffer.drop_oldest()) {
  }
  buffer.append(4, payload_for(4, 16));
  buffer.append(5, payload_for(5, 16));
  EXPECT_EQ(buffer.first_seq(), 4u);
  EXPECT_EQ(buffer.count(), 2u);
  EXPECT_TRUE(buffer.covers(3, 5));
  EXPECT_FALSE(buffer.covers(2, 5));
  const auto kept = replay_after(buffer, 3);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0], payload_for(4, 16));
  EXPECT_EQ(kept[1], payload_for(5, 16));

  ReplayBuffer late(pools_);
  late.append(100, "x");
  EXPECT_EQ(late.first_seq(), 100u);
  EXPECT_TRUE(late.covers(99, 100));
  EXPECT_FALSE(late.covers(98, 100));
}

// -------------------------------------------------------------- packing

// 60 frames of 64 bytes cost 60 * 68 = 4080 bytes: one 4096-byte block.
TEST_F(ReplayBufferTest, SmallFramesPackDenselyIntoOneSmallBlock) {
  ReplayBuffer buffer(pools_);
  append_range(buffer, 1, 60, 64);
  EXPECT_EQ(buffer.frame_bytes(), 60 * (kHeader + 64));
  EXPECT_EQ(buffer.memory_bytes(), kSmallBlock);
  EXPECT_EQ(small_in_use(), 1u);
  EXPECT_EQ(large_.blocks_total(), 0u);

  buffer.append(61, payload_for(61, 64));  // 16 bytes left: does not fit
  EXPECT_EQ(buffer.memory_bytes(), 2 * kSmallBlock);
  EXPECT_EQ(small_in_use(), 2u);

  const auto all = replay_after(buffer, 0);
  ASSERT_EQ(all.size(), 61u) << "frames on both sides of the block boundary";
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], payload_for(i + 1, 64));
}

// A frame takes the small pool while header + payload fit a small block.
TEST_F(ReplayBufferTest, FrameBiggerThanASmallBlockGoesToTheLargePool) {
  ReplayBuffer buffer(pools_);
  ReplayBuffer::Stored fits = buffer.append(1, payload_for(1, kSmallBlock - kHeader));
  EXPECT_EQ(fits.owner.get()->pool, &small_) << "4 + 4092 bytes fill a small block exactly";
  EXPECT_EQ(buffer.memory_bytes(), kSmallBlock);

  ReplayBuffer::Stored big = buffer.append(2, payload_for(2, kSmallBlock - kHeader + 1));
  EXPECT_EQ(big.owner.get()->pool, &large_);
  EXPECT_EQ(buffer.memory_bytes(), kSmallBlock + kLargeBlock);
  EXPECT_EQ(large_metrics_.block_allocations_total.get(), 1u);
  EXPECT_EQ(small_metrics_.block_allocations_total.get(), 1u);

  const auto all = replay_after(buffer, 0);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], payload_for(1, kSmallBlock - kHeader));
  EXPECT_EQ(all[1], payload_for(2, kSmallBlock - kHeader + 1));
}

// Frames after a large one, of any size, replay intact and in order.
TEST_F(ReplayBufferTest, MixedSizesReplayInOrder) {
  ReplayBuffer buffer(pools_);
  const std::vector<size_t> sizes = {10, 6000, 20, 4093, 4092, 0, 9000, 1, 3000, 3000, 3000};
  for (size_t i = 0; i < sizes.size(); ++i) buffer.append(i + 1, payload_for(i + 1, sizes[i]));
  const auto all = replay_after(buffer, 0);
  ASSERT_EQ(all.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(all[i], payload_for(i + 1, sizes[i])) << "frame " << i + 1;
  }
  // Dropping through them keeps the rest intact.
  for (size_t dropped = 1; dropped < sizes.size(); ++dropped) {
    ASSERT_TRUE(buffer.drop_oldest());
    const auto rest = replay_after(buffer, 0);
    ASSERT_EQ(rest.size(), sizes.size() - dropped);
    EXPECT_EQ(rest.front(), payload_for(dropped + 1, sizes[dropped]));
    EXPECT_EQ(rest.back(), payload_for(sizes.size(), sizes.back()));
  }
}

// ------------------------------------------------- blocks and references

TEST_F(ReplayBufferTest, DroppingAWholeBlockReturnsItToThePool) {
  ReplayBuffer buffer(pools_);
  append_range(buffer, 1, 61, 64);  // block A: frames 1..60, block B: frame 61
  ASSERT_EQ(small_in_use(), 2u);
  for (int i = 0; i < 59; ++i) ASSERT_TRUE(buffer.drop_oldest());
  EXPECT_EQ(small_in_use(), 2u) << "frame 60 still lives in block A";
  EXPECT_EQ(buffer.memory_bytes(), 2 * kSmallBlock);
  ASSERT_TRUE(buffer.drop_oldest());
  EXPECT_EQ(small_in_use(), 1u) << "block A is empty: back to the pool";
  EXPECT_EQ(buffer.memory_bytes(), kSmallBlock);
  EXPECT_EQ(buffer.first_seq(), 61u);
  ASSERT_TRUE(buffer.drop_oldest());
  EXPECT_EQ(small_in_use(), 0u);
  EXPECT_EQ(buffer.memory_bytes(), 0u);
  EXPECT_EQ(small_.blocks_free(), small_.blocks_total());
}

// A queued echo (a Stored reference) keeps the block out of the pool after
// the chain let go, and only until it is released.
TEST_F(ReplayBufferTest, BlockReturnsOnlyWhenChainAndStoredRefsAreGone) {
  ReplayBuffer buffer(pools_);
  ReplayBuffer::Stored first = buffer.append(1, payload_for(1, 64));
  append_range(buffer, 2, 61, 64);
  ASSERT_EQ(small_in_use(), 2u);
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(buffer.drop_oldest());
  EXPECT_EQ(buffer.memory_bytes(), kSmallBlock) << "the chain let go of block A";
  EXPECT_EQ(small_in_use(), 2u) << "but frame 1's echo still points into it";
  first.owner.reset();
  EXPECT_EQ(small_in_use(), 1u);

  ReplayBuffer::Stored held;
  buffer.for_each_after(60, [&](ReplayBuffer::Stored frame) { held = std::move(frame); });
  ASSERT_TRUE(held.owner);
  buffer.clear();
  EXPECT_EQ(buffer.memory_bytes(), 0u);
  EXPECT_EQ(small_in_use(), 1u) << "a replayed frame's reference keeps block B";
  held.owner.reset();
  EXPECT_EQ(small_in_use(), 0u);
}

TEST_F(ReplayBufferTest, LargeBlockReturnsToTheLargePool) {
  ReplayBuffer buffer(pools_);
  ReplayBuffer::Stored big = buffer.append(1, payload_for(1, 5000));
  ASSERT_EQ(large_in_use(), 1u);
  ASSERT_TRUE(buffer.drop_oldest());
  EXPECT_EQ(buffer.memory_bytes(), 0u);
  EXPECT_EQ(large_in_use(), 1u);
  big.owner.reset();
  EXPECT_EQ(large_in_use(), 0u);
  EXPECT_EQ(large_.blocks_free(), large_.blocks_total());
  EXPECT_EQ(small_.blocks_total(), 0u);
}

// The bytes a Stored points at are not reused while it is held, even as
// the buffer drops the frame and takes new blocks for new frames.
TEST_F(ReplayBufferTest, StoredPayloadStaysIntactAfterItsFrameIsDropped) {
  ReplayBuffer buffer(pools_);
  const std::string original = payload_for(1, 200);
  ReplayBuffer::Stored held = buffer.append(1, original);
  const char* where = held.payload.data();
  buffer.clear();
  append_range(buffer, 2, 200, 200);  // would reuse block A if it were free
  ASSERT_EQ(held.payload.data(), where);
  EXPECT_EQ(held.payload, original);
  const auto all = replay_after(buffer, 0);
  ASSERT_EQ(all.size(), 199u);
  EXPECT_EQ(all.front(), payload_for(2, 200));
}

TEST_F(ReplayBufferTest, ClearEmptiesAndReturnsEveryBlock) {
  ReplayBuffer buffer(pools_);
  append_range(buffer, 1, 100, 64);
  buffer.append(101, payload_for(101, 6000));
  append_range(buffer, 102, 110, 64);
  ASSERT_GT(small_in_use(), 0u);
  ASSERT_GT(large_in_use(), 0u);
  buffer.clear();
  EXPECT_EQ(buffer.count(), 0u);
  EXPECT_EQ(buffer.frame_bytes(), 0u);
  EXPECT_EQ(buffer.memory_bytes(), 0u);
  EXPECT_EQ(small_in_use(), 0u);
  EXPECT_EQ(large_in_use(), 0u);
  EXPECT_TRUE(replay_after(buffer, 0).empty());
  buffer.clear();  // idempotent
  EXPECT_EQ(buffer.count(), 0u);

  buffer.append(111, payload_for(111, 8));
  EXPECT_EQ(buffer.first_seq(), 111u);
  EXPECT_EQ(buffer.memory_bytes(), kSmallBlock);
}

TEST_F(ReplayBufferTest, DestructorReturnsEveryBlock) {
  {
    ReplayBuffer buffer(pools_);
    append_range(buffer, 1, 200, 100);
    buffer.append(201, payload_for(201, 10000));
    ASSERT_GT(small_in_use(), 1u);
  }
  EXPECT_EQ(small_in_use(), 0u);
  EXPECT_EQ(large_in_use(), 0u);
}

// ------------------------------------------------------------ steady state

// A session window of 256 frames with a queue of echoes in flight, as the
// gateway runs it: after warm-up, 10,000 append/drop cycles take no block
// from the heap in either pool.
TEST_F(ReplayBufferTest, SteadyStateTakesNoNewBlocks) {
  constexpr uint64_t kWindow = 256;
  constexpr size_t kEchoesInFlight = 32;
  ReplayBuffer buffer(pools_);
  std::deque<ReplayBuffer::Stored> in_flight;
  uint64_t seq = 0;
  auto cycle = [&] {
    ++seq;
    // Mostly small frames, now and then one for the large pool.
    const size_t size = seq % 97 == 0 ? 6000 : 16 + (seq * 37) % 200;
    ReplayBuffer::Stored stored = buffer.append(seq, payload_for(seq, size));
    ASSERT_EQ(stored.payload, payload_for(seq, size));
    in_flight.push_back(std::move(stored));
    if (in_flight.size() > kEchoesInFlight) in_flight.pop_front();
    while (buffer.count() > kWindow) ASSERT_TRUE(buffer.drop_oldest());
  };
  for (int i = 0; i < 2000; ++i) cycle();  // warm-up: several turns of the window
  const uint64_t small_before = small_metrics_.block_allocations_total.get();
  const uint64_t large_before = large_metrics_.block_allocations_total.get();
  for (int i = 0; i < 10'000; ++i) {
    cycle();
    if (HasFatalFailure()) return;
  }
  EXPECT_EQ(small_metrics_.block_allocations_total.get(), small_before);
  EXPECT_EQ(large_metrics_.block_allocations_total.get(), large_before);
  EXPECT_EQ(buffer.count(), kWindow);
  EXPECT_EQ(buffer.first_seq(), seq - kWindow + 1);
  const auto kept = replay_after(buffer, seq - 3);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept.back(), payload_for(seq, seq % 97 == 0 ? 6000 : 16 + (seq * 37) % 200));
}

}  // namespace
}  // namespace flux
