#include "metrics/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace flux {
namespace {

// Linux 6.2 and later give the number of open descriptors as the size of
// /proc/self/fd: one stat(). Listing the directory costs a lookup per
// descriptor (about 1 ms a second at 10,000 connections, the sampler's
// largest cost in the seed profile); older kernels say 0 there, and are listed.
uint64_t count_open_fds() {
  struct stat fd_dir {};
  if (stat("/proc/self/fd", &fd_dir) == 0 && fd_dir.st_size > 0) return uint64_t(fd_dir.st_size);
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return 0;
  uint64_t count = 0;
  while (dirent* entry = readdir(dir))
    if (entry->d_name[0] != '.') ++count;
  closedir(dir);
  return count > 0 ? count - 1 : 0;  // minus the descriptor of this very listing
}

double boot_time_unix_seconds() {
  std::ifstream stat("/proc/stat");
  std::string key;
  double value = 0;
  while (stat >> key)
    if (key == "btime" && stat >> value) return value;
  return 0;
}

// /proc/self/stat fields after the command name (which may hold spaces).
void read_stat(ProcessStats& out) {
  std::ifstream file("/proc/self/stat");
  std::string line;
  std::getline(file, line);
  auto close_paren = line.rfind(')');
  if (close_paren == std::string::npos) return;
  std::istringstream fields(line.substr(close_paren + 2));
  std::string field;
  const double ticks = double(sysconf(_SC_CLK_TCK));
  // Field numbers as in proc(5); the state is field 3.
  for (int number = 3; fields >> field; ++number) {
    if (number == 14) out.cpu_seconds_total += std::stod(field) / ticks;  // utime
    if (number == 15) out.cpu_seconds_total += std::stod(field) / ticks;  // stime
    if (number == 20) out.threads = std::stoull(field);
    if (number == 22)
      out.start_time_unix_seconds = boot_time_unix_seconds() + std::stod(field) / ticks;
    if (number == 23) out.virtual_memory_bytes = std::stoull(field);
    if (number == 24) {
      out.resident_memory_bytes = std::stoull(field) * uint64_t(sysconf(_SC_PAGESIZE));
      break;
    }
  }
}

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats stats;
  read_stat(stats);
  stats.open_fds = count_open_fds();
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) stats.max_fds = limit.rlim_cur;
  return stats;
}

}  // namespace flux
