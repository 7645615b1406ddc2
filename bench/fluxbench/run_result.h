#pragma once
// RunResult: everything one run measured, for the summary and the JSON.
//
// Thread contract: built by the main thread after every worker is done.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/fluxbench/histogram.h"
#include "bench/fluxbench/options.h"
#include "bench/fluxbench/server_stats.h"

namespace flux::bench {

// The workers' counters, summed (see counters.h for each meaning).
struct Totals {
  uint64_t ready = 0, connect_failed = 0, handshake_failed = 0, closed_by_server = 0,
           closed_clean = 0;
  uint64_t sent = 0, received = 0, received_measured = 0, bytes_measured = 0;
  uint64_t mismatched = 0, lost = 0, unsent = 0, server_errors = 0;
  uint64_t drops = 0, resumes = 0, resume_failures = 0, replayed = 0, resent = 0;  // --churn
  uint64_t server_closes = 0;   // --resume-on-close
  uint64_t resume_retries = 0;  // --resume-on-close

  // Everything that makes the run fail: a wrong or missing echo, an error
  // from the server, a READY connection the server dropped, a failed resume.
  uint64_t errors() const noexcept {
    return mismatched + lost + server_errors + closed_by_server + resume_failures;
  }
};

// One second of the measured window, as the progress line saw it.
struct SecondSample {
  double elapsed_s = 0;  // since the run began, at the end of that second
  double echoes_per_second = 0;
  uint64_t p99_ns = 0;           // echoes received in that second
  uint64_t send_lag_p99_ns = 0;  // open loop: frames sent in that second
};

struct RunResult {
  Options options;
  bool started = false;      // traffic began (the connect phase ended)
  bool interrupted = false;  // SIGINT / SIGTERM
  double measure_start_unix = 0;
  double measure_end_unix = 0;
  double measured_seconds = 0;
  Totals totals;
  Histogram latency;                  // echo latency, frames sent in the measured window
  Histogram send_lag;                 // open loop: actual - intended send time
  Histogram resume_latency;           // --churn: drop -> FLUX_READY received
  std::vector<SecondSample> seconds;  // whole seconds inside the measured window
  std::map<std::string, uint64_t> failures;
  double client_cpu_percent = 0;  // of one core, over the measured window
  uint64_t client_rss_bytes = 0;  // at the end
  uint64_t open_file_limit = 0;
  std::optional<ServerView> server;
};

// 0 ok, 1 errors, 3 no connection got ready, 130 interrupted.
int exit_code(const RunResult& result);

}  // namespace flux::bench
