#pragma once
// Process-wide figures read from /proc/self, the way Prometheus's standard
// process collector reads them (prometheus-cpp 1.0 has none).
//
// Thread contract: any thread; each call reads /proc afresh.

#include <cstdint>

namespace flux {

struct ProcessStats {
  double cpu_seconds_total = 0;  // user + system
  uint64_t resident_memory_bytes = 0;
  uint64_t virtual_memory_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;  // RLIMIT_NOFILE soft limit
  uint64_t threads = 0;
  double start_time_unix_seconds = 0;
};

ProcessStats read_process_stats();

}  // namespace flux
