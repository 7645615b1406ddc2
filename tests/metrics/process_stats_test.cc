// read_process_stats: the process figures read from /proc/self.
//
// The descriptor count is what process_open_fds exposes; it comes from one
// stat() of /proc/self/fd where the kernel gives the count as its size, and
// from a listing elsewhere. Either way it must move by exactly the
// descriptors this test opens and closes.

#include "metrics/process_stats.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <vector>

namespace flux {
namespace {

TEST(ProcessStats, OpenDescriptorsMoveByExactlyWhatWasOpenedAndClosed) {
  const uint64_t before = read_process_stats().open_fds;
  ASSERT_GT(before, 2u) << "stdin, stdout and stderr at least";
  std::vector<int> opened;
  for (int i = 0; i < 50; ++i) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    opened.push_back(fd);
  }
  EXPECT_EQ(read_process_stats().open_fds, before + 50);
  for (int fd : opened) ::close(fd);
  EXPECT_EQ(read_process_stats().open_fds, before);
}

TEST(ProcessStats, CpuMemoryAndLimitsAreRead) {
  const ProcessStats stats = read_process_stats();
  EXPECT_GT(stats.resident_memory_bytes, 0u);
  EXPECT_GE(stats.virtual_memory_bytes, stats.resident_memory_bytes);
  EXPECT_GE(stats.threads, 1u);
  EXPECT_GT(stats.max_fds, stats.open_fds);
  EXPECT_GT(stats.start_time_unix_seconds, 1.6e9);
}

}  // namespace
}  // namespace flux
