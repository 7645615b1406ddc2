#pragma once
// The live progress line, once a second on stderr:
//
//   [  7.0s/12.0s] measure  conns 100/100  rate 181.2k/s  p99 96.3us  errors 0  | server cpu 88%
//   lag p99 41us
//
// On a terminal it rewrites one line (\r); otherwise (a log, CI) it prints
// one line per second.
//
// Thread contract: the main thread only.

#include <cstdint>
#include <cstdio>

#include "bench/fluxbench/server_stats.h"

namespace flux::bench {

struct ProgressState {
  const char* phase = "";
  double elapsed_s = 0;
  double planned_s = 0;  // when the measured window ends (grace not included)
  uint64_t ready = 0;
  uint64_t conns = 0;
  double rate = 0;      // echoes/s over the last tick
  uint64_t p99_ns = 0;  // over the last tick
  uint64_t errors = 0;
  uint64_t failed = 0;  // connect + handshake failures
  const ServerSample* server = nullptr;
};

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled);
  void show(const ProgressState& state);
  // Ends a rewritten line so the summary starts on its own line.
  void finish();

 private:
  bool enabled_;
  bool tty_;
  bool dirty_ = false;
};

}  // namespace flux::bench
