#pragma once
// What fluxbench knows about its own process: file limits, CPU and memory,
// so that the report can tell when the client, not the server, was the
// bottleneck.
//
// Thread contract: free functions, any thread.

#include <cstdint>

namespace flux::bench {

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now.
uint64_t raise_open_file_limit();

// User + system CPU seconds of this process, all threads.
double self_cpu_seconds();

// Resident set size of this process (VmRSS), in bytes; 0 if unknown.
uint64_t self_rss_bytes();

}  // namespace flux::bench
