// OutQueue and FrameNodePool, flushed into a real socket.
//
// A non-blocking AF_UNIX stream socketpair stands in for the client: it has
// the same partial-write and EAGAIN behaviour as TCP, and its send buffer can
// be shrunk to force many partial writes without any timing. The expected
// bytes are built by the test itself (not by encode_frame_header), so a wrong
// header, a reordered or a torn frame shows up as a byte difference.

#include "gateway/out_queue.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "gateway/buffer_pool.h"
#include "gateway/loop_clock.h"
#include "metrics/histogram.h"

namespace flux {
namespace {

using namespace std::chrono_literals;

// The bytes of one frame as the protocol defines them (built independently
// of encode_frame_header).
std::string wire_frame(std::string_view payload) {
  const auto n = static_cast<uint32_t>(payload.size());
  std::string out;
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out.append(payload);
  return out;
}

std::string_view view_of(const BlockRef& block, size_t offset, size_t length) {
  return {reinterpret_cast<const char*>(block.data()) + offset, length};
}

// Everything the peer can read right now, without blocking.
std::string read_available(int fd) {
  std::string out;
  std::array<char, 16384> chunk;
  for (;;) {
    ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n <= 0) break;
    out.append(chunk.data(), static_cast<size_t>(n));
  }
  return out;
}

// At most `limit` bytes, without blocking.
std::string read_some(int fd, size_t limit) {
  std::string out(limit, '\0');
  ssize_t n = ::read(fd, out.data(), limit);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

class OutQueueTest : public ::testing::Test {
 protected:
  static constexpr size_t kBlockSize = 16 * 1024;

  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    writer_ = Fd(fds[0]);
    reader_ = Fd(fds[1]);
  }

  // Flushes, adding to the running tally; returns the outcome.
  OutQueue::Flush flush() { return queue_.flush(writer_.get(), tally_); }

  // Fills a pooled block with a deterministic pattern and returns it.
  BlockRef patterned_block(uint32_t seed) {
    BlockRef block = blocks_.acquire();
    std::mt19937 rng(seed);
    for (size_t i = 0; i < kBlockSize; ++i) block.data()[i] = std::byte(rng() & 0xff);
    return block;
  }

  // Members in dependency order: the queue releases into the node pool and
  // drops block references, so it must be destroyed first.
  PoolMetrics metrics_;
  BufferPool blocks_{kBlockSize, 4, metrics_};
  FrameNodePool nodes_{metrics_};
  OutQueue queue_{nodes_};
  Fd writer_, reader_;
  FlushTally tally_;
  LatencyHistogram latency_;
};

// ------------------------------------------------------------------- basics

TEST_F(OutQueueTest, EmptyQueueFlushesToDrainedWritingNothing) {
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(queue_.pending_bytes(), 0u);
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(tally_.bytes, 0u);
  EXPECT_EQ(tally_.frames, 0u);
  EXPECT_EQ(read_available(reader_.get()), "");
}

TEST_F(OutQueueTest, TextOnlyFramesArriveFramedAndInOrder) {
  const std::string ready = "FLUX_READY " + std::string(32, 'a') + " 18446744073709551615";
  const std::vector<std::string> texts = {ready, "FLUX_PONG", "", "FLUX_ERROR idle-timeout"};
  std::string expected;
  for (const auto& t : texts) {
    queue_.push(t);
    expected += wire_frame(t);
  }
  EXPECT_FALSE(queue_.empty());
  EXPECT_EQ(queue_.pending_bytes(), expected.size());

  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(tally_.bytes, expected.size());
  EXPECT_EQ(tally_.frames, texts.size());
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(queue_.pending_bytes(), 0u);
  EXPECT_EQ(read_available(reader_.get()), expected);
}

TEST_F(OutQueueTest, TextFillingTheWholeHeadCapacity) {
  const std::string longest(OutFrame::kHeadCapacity - 4, 'h');
  queue_.push(longest);
  EXPECT_EQ(queue_.pending_bytes(), OutFrame::kHeadCapacity);
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(read_available(reader_.get()), wire_frame(longest));
}

// ----------------------------------------------------- tails: no copy, refs

TEST_F(OutQueueTest, TailFramesReferenceTheBlockUntilWritten) {
  BlockRef block = patterned_block(1);
  queue_.push("", block.share(), view_of(block, 0, 1000));             // an echo
  queue_.push("FLUX_PONG ", block.share(), view_of(block, 1000, 17));  // a pong with token
  queue_.push("FLUX_READY x 0");                                       // text only
  EXPECT_FALSE(block.unique()) << "queued frames hold the block";

  const std::string expected = wire_frame(view_of(block, 0, 1000)) +
                               wire_frame("FLUX_PONG " + std::string(view_of(block, 1000, 17))) +
                               wire_frame("FLUX_READY x 0");
  EXPECT_EQ(queue_.pending_bytes(), expected.size());
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(tally_.frames, 3u);
  EXPECT_TRUE(block.unique()) << "written frames must drop their block references";
  EXPECT_EQ(read_available(reader_.get()), expected);
}

TEST_F(OutQueueTest, EchoWithNoTextIsHeaderPlusTail) {
  // Exactly how Connection queues a data echo: a default (null) text view.
  // Copying zero bytes from a null pointer is still undefined behaviour for
  // memcpy, which UBSan builds report here.
  BlockRef block = patterned_block(11);
  queue_.push(std::string_view{}, block.share(), view_of(block, 3, 21));
  EXPECT_EQ(queue_.pending_bytes(), 4u + 21u);
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(read_available(reader_.get()), wire_frame(view_of(block, 3, 21)));
}

TEST_F(OutQueueTest, TailIsAViewNotACopy) {
  BlockRef block = patterned_block(2);
  std::memcpy(block.data(), "before", 6);
  queue_.push("", block.share(), view_of(block, 0, 6));
  // Bytes changed after push but before the write are the bytes that go out:
  // the queue pointed at the block instead of copying the payload.
  std::memcpy(block.data(), "after!", 6);
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(read_available(reader_.get()), wire_frame("after!"));
}

TEST_F(OutQueueTest, LastReferenceInTheQueueReturnsTheBlockToThePool) {
  const size_t free_before = blocks_.blocks_free();
  {
    BlockRef block = patterned_block(3);
    queue_.push("", block.share(), view_of(block, 0, 10));
    // The view first: argument evaluation order would not guarantee it.
    const std::string_view second = view_of(block, 10, 10);
    queue_.push("", std::move(block), second);
  }
  EXPECT_EQ(blocks_.blocks_free(), free_before - 1) << "the queue still holds it";
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(blocks_.blocks_free(), free_before);
  EXPECT_EQ(metrics_.block_bytes_in_use.get(), 0u);
}

TEST_F(OutQueueTest, ClearDropsEverythingAndReleasesBlocks) {
  BlockRef block = patterned_block(4);
  for (int i = 0; i < 10; ++i) queue_.push("FLUX_PONG ", block.share(), view_of(block, 0, 100));
  EXPECT_EQ(queue_.pending_bytes(), 10u * (4 + 10 + 100));
  queue_.clear();
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(queue_.pending_bytes(), 0u);
  EXPECT_TRUE(block.unique());
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(tally_.bytes, 0u);
  EXPECT_EQ(read_available(reader_.get()), "");
}

TEST_F(OutQueueTest, DestroyingAQueueReleasesItsBlocks) {
  BlockRef block = patterned_block(5);
  {
    OutQueue other(nodes_);
    other.push("", block.share(), view_of(block, 0, 50));
    EXPECT_FALSE(block.unique());
  }
  EXPECT_TRUE(block.unique());
}

// ------------------------------------------------------ accounting, batches

TEST_F(OutQueueTest, PendingBytesCountHeadersTextAndTails) {
  BlockRef block = patterned_block(6);
  uint64_t expected = 0;
  queue_.push("");
  expected += 4;
  EXPECT_EQ(queue_.pending_bytes(), expected);
  queue_.push("FLUX_BYE");
  expected += 4 + 8;
  EXPECT_EQ(queue_.pending_bytes(), expected);
  queue_.push("", block.share(), view_of(block, 0, kBlockSize));
  expected += 4 + kBlockSize;
  EXPECT_EQ(queue_.pending_bytes(), expected);
  queue_.push("FLUX_PONG ", block.share(), view_of(block, 5, 0));
  expected += 4 + 10;
  EXPECT_EQ(queue_.pending_bytes(), expected);
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(tally_.bytes, expected);
  EXPECT_EQ(queue_.pending_bytes(), 0u);
}

TEST_F(OutQueueTest, MoreFramesThanOneSendmsgBatchAllGoOutInOrder) {
  // Far more frames than fit one iovec array, so flush must loop over batches.
  std::string expected;
  BlockRef block = patterned_block(7);
  for (int i = 0; i < 1000; ++i) {
    const std::string text = std::to_string(i);
    if (i % 2) {
      queue_.push(text);
      expected += wire_frame(text);
    } else {
      const size_t offset = static_cast<size_t>(i) % 1000;
      queue_.push(text, block.share(), view_of(block, offset, 3));
      expected += wire_frame(text + std::string(view_of(block, offset, 3)));
    }
  }
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(tally_.frames, 1000u);
  EXPECT_EQ(tally_.bytes, expected.size());
  EXPECT_EQ(read_available(reader_.get()), expected);
  EXPECT_TRUE(block.unique());
}

// ------------------------------------------------------------ partial writes

// Where each frame ends in the concatenated stream, as byte offsets.
std::vector<size_t> frame_ends(const std::vector<std::string>& frames) {
  std::vector<size_t> ends;
  size_t at = 0;
  for (const auto& f : frames) ends.push_back(at += f.size());
  return ends;
}

TEST_F(OutQueueTest, PartialWritesResumeExactlyWhereTheyStopped) {
  int small = 4096;  // the kernel doubles it and applies its minimum
  ASSERT_EQ(::setsockopt(writer_.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);

  // ~600 KiB of frames: long text heads, tails of odd lengths, empty frames,
  // tails from four different blocks, so writes stop at every kind of offset.
  std::vector<BlockRef> sources;
  for (uint32_t i = 0; i < 4; ++i) sources.push_back(patterned_block(100 + i));
  std::mt19937 rng(42);
  std::vector<std::string> frames;
  std::vector<uint64_t> echoes_in_first{0};  // [k]: echo frames among the first k
  tally_.echo_latency = &latency_;
  for (int i = 0; i < 3000; ++i) {
    const BlockRef& src = sources[static_cast<size_t>(i) % sources.size()];
    const std::string text = (i % 3 == 0) ? std::string(static_cast<size_t>(i % 90), 't') : "";
    const size_t length = (i % 7 == 0) ? 0 : std::uniform_int_distribution<size_t>(1, 400)(rng);
    const size_t offset = std::uniform_int_distribution<size_t>(0, kBlockSize - length)(rng);
    const bool echo = text.empty();  // data echoes are timed, control frames are not
    queue_.push(text, src.share(), view_of(src, offset, length), echo ? monotonic_ns() : 0);
    frames.push_back(wire_frame(text + std::string(view_of(src, offset, length))));
    echoes_in_first.push_back(echoes_in_first.back() + (echo ? 1 : 0));
  }
  std::string expected;
  for (const auto& f : frames) expected += f;
  const std::vector<size_t> ends = frame_ends(frames);
  ASSERT_EQ(queue_.pending_bytes(), expected.size());

  std::string received;
  int blocked = 0, stopped_mid_frame = 0;
  OutQueue::Flush result = OutQueue::Flush::kBlocked;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (result != OutQueue::Flush::kDrained && std::chrono::steady_clock::now() < deadline) {
    result = flush();
    ASSERT_NE(result, OutQueue::Flush::kFailed);
    // Invariants after every flush: nothing lost from the accounting, and
    // exactly the frames whose last byte went out are counted as written.
    ASSERT_EQ(queue_.pending_bytes() + tally_.bytes, expected.size());
    const auto whole = static_cast<uint64_t>(
        std::upper_bound(ends.begin(), ends.end(), tally_.bytes) - ends.begin());
    ASSERT_EQ(tally_.frames, whole) << "after " << tally_.bytes << " bytes";
    // An echo's latency is recorded when its last byte is written, once.
    ASSERT_EQ(latency_.snapshot().count(), echoes_in_first[whole]);
    if (result == OutQueue::Flush::kBlocked) {
      ++blocked;
      if (!std::binary_search(ends.begin(), ends.end(), tally_.bytes)) ++stopped_mid_frame;
    }
    received += read_some(reader_.get(), 3000);  // drain a little, not all
  }
  ASSERT_EQ(result, OutQueue::Flush::kDrained);
  received += read_available(reader_.get());

  EXPECT_GT(blocked, 10) << "the small send buffer should have forced many partial writes";
  EXPECT_GT(stopped_mid_frame, 0) << "no write stopped inside a frame: the resume path is untested";
  EXPECT_EQ(tally_.bytes, expected.size());
  EXPECT_EQ(tally_.frames, frames.size());
  EXPECT_TRUE(queue_.empty());
  ASSERT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected)
      << "bytes differ at offset "
      << std::mismatch(received.begin(), received.end(), expected.begin()).first - received.begin();
  for (const BlockRef& src : sources) EXPECT_TRUE(src.unique());
}

TEST_F(OutQueueTest, BlockedFlushKeepsEverythingNotWritten) {
  int small = 4096;
  ASSERT_EQ(::setsockopt(writer_.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  BlockRef block = patterned_block(8);
  for (int i = 0; i < 64; ++i) queue_.push("", block.share(), view_of(block, 0, kBlockSize));
  const uint64_t total = queue_.pending_bytes();

  ASSERT_EQ(flush(), OutQueue::Flush::kBlocked);
  EXPECT_GT(tally_.bytes, 0u);
  EXPECT_LT(tally_.bytes, total);
  EXPECT_EQ(queue_.pending_bytes(), total - tally_.bytes);
  EXPECT_FALSE(queue_.empty());
  EXPECT_FALSE(block.unique());
  // Nothing read: a second flush makes no progress and says so again.
  const uint64_t before = tally_.bytes;
  EXPECT_EQ(flush(), OutQueue::Flush::kBlocked);
  EXPECT_EQ(tally_.bytes, before);
}

// ------------------------------------------------------------- echo latency

TEST_F(OutQueueTest, EchoLatencyIsRecordedForEchoesOnly) {
  tally_.echo_latency = &latency_;
  BlockRef block = patterned_block(10);
  const uint64_t now = monotonic_ns();
  const uint64_t early = now - 5'000'000, later = now - 2'000'000;  // read 5 ms and 2 ms ago
  queue_.push("", block.share(), view_of(block, 0, 8), early);
  queue_.push("FLUX_PONG");  // control: never timed
  queue_.push("", block.share(), view_of(block, 8, 8), later);
  ASSERT_EQ(flush(), OutQueue::Flush::kDrained);
  const uint64_t after = monotonic_ns();

  HistogramSnapshot s = latency_.snapshot();
  EXPECT_EQ(s.count(), 2u);
  EXPECT_GE(s.max_ns, 5'000'000u);
  EXPECT_LE(s.max_ns, after - early);
  EXPECT_GE(s.sum_ns, 7'000'000u);
  EXPECT_LE(s.sum_ns, (after - early) + (after - later));
}

// A run: the echoes of frames read together, one entry whose tail is their
// wire bytes. It goes out verbatim, counts every frame and times each echo.
TEST_F(OutQueueTest, ARunOfEchoesIsItsWireBytesCountedAndTimedFrameByFrame) {
  tally_.echo_latency = &latency_;
  const std::string wire = wire_frame("one") + wire_frame("") + wire_frame(std::string(64, 'x'));
  BlockRef block = blocks_.acquire();
  std::memcpy(block.data(), wire.data(), wire.size());
  const uint64_t read_at = monotonic_ns() - 3'000'000;  // read 3 ms ago
  queue_.push("FLUX_PONG");
  queue_.push_run(block.share(), view_of(block, 0, wire.size()), 3, read_at);
  EXPECT_EQ(queue_.pending_bytes(), wire_frame("FLUX_PONG").size() + wire.size());

  ASSERT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(read_available(reader_.get()), wire_frame("FLUX_PONG") + wire);
  EXPECT_EQ(tally_.frames, 4u) << "the pong and the three echoes of the run";
  HistogramSnapshot s = latency_.snapshot();
  EXPECT_EQ(s.count(), 3u) << "one echo time per frame of the run, none for the pong";
  EXPECT_GE(s.sum_ns, 9'000'000u);
}

// A run cut by a short write resumes where it stopped, and its frames are
// counted once, when the last byte of the run is written.
TEST_F(OutQueueTest, ARunCutByAShortWriteCountsItsFramesOnceWhole) {
  int small = 4096;  // the kernel doubles it and applies its minimum
  ASSERT_EQ(::setsockopt(writer_.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  std::string wire;
  for (int i = 0; i < 16; ++i) wire += wire_frame(std::string(1000, char('a' + i)));
  BlockRef block = blocks_.acquire();
  std::memcpy(block.data(), wire.data(), wire.size());
  queue_.push_run(block.share(), view_of(block, 0, wire.size()), 16, 1);

  ASSERT_EQ(flush(), OutQueue::Flush::kBlocked) << "16 KB do not fit a 4 KB socket buffer";
  EXPECT_GT(tally_.bytes, 0u);
  EXPECT_EQ(tally_.frames, 0u) << "no frame counted while the run is unfinished";
  std::string received;
  while (received.size() < wire.size()) {
    received += read_available(reader_.get());
    if (!queue_.empty()) flush();
  }
  EXPECT_EQ(received, wire);
  EXPECT_EQ(tally_.frames, 16u);
  EXPECT_EQ(tally_.bytes, wire.size());
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(nodes_.nodes_in_use(), 0u);
}

TEST_F(OutQueueTest, EchoStampedInTheFutureRecordsZeroNotAWrappedValue) {
  tally_.echo_latency = &latency_;
  queue_.push("echo", {}, {}, monotonic_ns() + 3'600'000'000'000u);
  ASSERT_EQ(flush(), OutQueue::Flush::kDrained);
  HistogramSnapshot s = latency_.snapshot();
  EXPECT_EQ(s.count(), 1u);
  EXPECT_EQ(s.max_ns, 0u);
}

TEST_F(OutQueueTest, StampedEchoesNeedNoHistogram) {
  queue_.push("echo", {}, {}, monotonic_ns());  // tally_.echo_latency is null
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(tally_.frames, 1u);
  EXPECT_EQ(latency_.snapshot().count(), 0u);
}

// ----------------------------------------------------------------- failures

volatile sig_atomic_t g_sigpipes = 0;
void count_sigpipe(int) {
  g_sigpipes = g_sigpipes + 1;
}

// Counts SIGPIPE for the scope instead of letting it kill the test binary.
class SigpipeCounter {
 public:
  SigpipeCounter() {
    g_sigpipes = 0;
    struct sigaction action {};
    action.sa_handler = count_sigpipe;
    sigemptyset(&action.sa_mask);
    sigaction(SIGPIPE, &action, &previous_);
  }
  ~SigpipeCounter() { sigaction(SIGPIPE, &previous_, nullptr); }
  int count() const { return g_sigpipes; }

 private:
  struct sigaction previous_ {};
};

TEST_F(OutQueueTest, PeerGoneIsFailedWithoutSigpipe) {
  SigpipeCounter sigpipes;
  queue_.push("FLUX_ERROR server-shutdown");
  reader_.reset();
  EXPECT_EQ(flush(), OutQueue::Flush::kFailed);
  EXPECT_EQ(tally_.bytes, 0u);
  EXPECT_EQ(tally_.frames, 0u);
  EXPECT_EQ(sigpipes.count(), 0) << "flush must send with MSG_NOSIGNAL";
}

TEST_F(OutQueueTest, PeerGoneAfterAPartialWriteIsFailed) {
  SigpipeCounter sigpipes;
  int small = 4096;
  ASSERT_EQ(::setsockopt(writer_.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  BlockRef block = patterned_block(9);
  for (int i = 0; i < 64; ++i) queue_.push("", block.share(), view_of(block, 0, kBlockSize));
  ASSERT_EQ(flush(), OutQueue::Flush::kBlocked);
  reader_.reset();
  EXPECT_EQ(flush(), OutQueue::Flush::kFailed);
  EXPECT_EQ(sigpipes.count(), 0);
  queue_.clear();
  EXPECT_TRUE(block.unique());
}

// ------------------------------------------------------------ FrameNodePool

TEST(FrameNodePool, GrowsByOneCountedChunkPer256Nodes) {
  PoolMetrics metrics;
  FrameNodePool nodes(metrics);
  EXPECT_EQ(metrics.frame_node_allocations_total.get(), 0u) << "no nodes until first use";

  std::vector<OutFrame*> held;
  std::set<OutFrame*> distinct;
  for (int i = 1; i <= 513; ++i) {
    held.push_back(nodes.acquire());
    distinct.insert(held.back());
    // Nodes 1..256 come from the first chunk, 257..512 the second, 513 a third.
    EXPECT_EQ(metrics.frame_node_allocations_total.get(), static_cast<uint64_t>((i + 255) / 256))
        << "node #" << i;
  }
  EXPECT_EQ(distinct.size(), held.size()) << "a node was handed out twice";
  for (OutFrame* f : held) nodes.release(f);
}

TEST(FrameNodePool, ReleasedNodesAreReusedWithoutGrowing) {
  PoolMetrics metrics;
  FrameNodePool nodes(metrics);
  std::vector<OutFrame*> held;
  for (int i = 0; i < 300; ++i) held.push_back(nodes.acquire());
  ASSERT_EQ(metrics.frame_node_allocations_total.get(), 2u);
  const std::set<OutFrame*> first_round(held.begin(), held.end());

  for (int round = 0; round < 10; ++round) {
    for (OutFrame* f : held) nodes.release(f);
    held.clear();
    for (int i = 0; i < 512; ++i) held.push_back(nodes.acquire());  // both chunks' worth
  }
  EXPECT_EQ(metrics.frame_node_allocations_total.get(), 2u);
  for (OutFrame* f : first_round)
    EXPECT_EQ(std::count(held.begin(), held.end(), f), 1) << "old nodes are recycled";
  for (OutFrame* f : held) nodes.release(f);
}

TEST(FrameNodePool, ReleaseDropsTheBlockAndClearsTheNode) {
  PoolMetrics metrics;
  BufferPool blocks(16384, 1, metrics);
  FrameNodePool nodes(metrics);
  BlockRef block = blocks.acquire();

  OutFrame* frame = nodes.acquire();
  frame->block = block.share();
  frame->tail = block.data();
  frame->tail_length = 99;
  frame->head_length = 20;
  frame->read_at_ns = 12345;
  EXPECT_FALSE(block.unique());
  nodes.release(frame);
  EXPECT_TRUE(block.unique()) << "a released node must not keep a block alive";

  // Take the whole chunk back: the released node is among it, cleared.
  std::vector<OutFrame*> all;
  for (int i = 0; i < 256; ++i) all.push_back(nodes.acquire());
  ASSERT_EQ(metrics.frame_node_allocations_total.get(), 1u);
  ASSERT_EQ(std::count(all.begin(), all.end(), frame), 1);
  EXPECT_FALSE(frame->block);
  EXPECT_EQ(frame->tail, nullptr);
  EXPECT_EQ(frame->tail_length, 0u);
  EXPECT_EQ(frame->head_length, 0u);
  EXPECT_EQ(frame->read_at_ns, 0u) << "a recycled node must not look like a timed echo";
  EXPECT_EQ(frame->next, nullptr);
  for (OutFrame* f : all) nodes.release(f);
}

TEST_F(OutQueueTest, QueueingReusesNodesAfterAFlush) {
  EXPECT_EQ(metrics_.frame_node_allocations_total.get(), 0u);
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 256; ++i) queue_.push("x");
    ASSERT_EQ(flush(), OutQueue::Flush::kDrained);
    read_available(reader_.get());
  }
  EXPECT_EQ(metrics_.frame_node_allocations_total.get(), 1u)
      << "256 frames in flight need one chunk, however often they are recycled";
  for (int i = 0; i < 257; ++i) queue_.push("y");
  EXPECT_EQ(metrics_.frame_node_allocations_total.get(), 2u);
  queue_.clear();
}

}  // namespace
}  // namespace flux

// ------------------------------------------------- holding (echo after persist)

namespace flux {
namespace {

TEST_F(OutQueueTest, HeldFramesWaitInOrderUntilReleased) {
  queue_.push("before");  // writable: nothing held yet
  queue_.hold_from_next();
  queue_.push("held-1");  // frame 1
  const uint64_t first_batch_end = queue_.pushed();
  queue_.push("held-2");  // frame 2
  EXPECT_TRUE(queue_.holding());
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);  // all that may go went
  EXPECT_EQ(read_available(reader_.get()), wire_frame("before"));
  EXPECT_FALSE(queue_.empty());
  EXPECT_EQ(queue_.pending_bytes(), 2 * wire_frame("held-1").size());

  queue_.release_to(first_batch_end);  // the first batch is stored
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(read_available(reader_.get()), wire_frame("held-1"));
  queue_.release_to(0);  // an older answer never holds back what went
  queue_.release_to(queue_.pushed());
  EXPECT_FALSE(queue_.holding());
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(read_available(reader_.get()), wire_frame("held-2"));
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(tally_.frames, 3u);
}

TEST_F(OutQueueTest, DroppingHeldFramesKeepsWhatWasAllowed) {
  queue_.push("a");
  queue_.push("b");
  queue_.hold_from_next();
  queue_.push("c");
  queue_.push("d");
  queue_.drop_held();  // the store refused them: they are never sent
  EXPECT_FALSE(queue_.holding());
  queue_.push("error");
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(read_available(reader_.get()), wire_frame("a") + wire_frame("b") + wire_frame("error"));
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(queue_.pending_bytes(), 0u);

  queue_.hold_from_next();  // everything held, then dropped: an empty queue
  queue_.push("x");
  queue_.drop_held();
  EXPECT_TRUE(queue_.empty());
  queue_.push("y");
  EXPECT_EQ(flush(), OutQueue::Flush::kDrained);
  EXPECT_EQ(read_available(reader_.get()), wire_frame("y"));
}

}  // namespace
}  // namespace flux
