#pragma once
// Runner: the main thread's side of a run. It starts the workers, decides
// when the connection phase is over, samples the edges of the measured
// window (client CPU, the server's /stats), prints progress, and collects
// the result once every worker has stopped.
//
//   main thread                          workers (one epoll loop each)
//   -----------                          -----------------------------
//   spawn ---------------------------->  connect, handshake (paced)
//   all resolved or budget spent:
//     ready_total, start_ns ---------->  traffic: warm-up, measured, drain
//   ticks: progress, /stats <- counters, histograms (relaxed atomics)
//   warm_end, end: edge samples
//   nothing in flight: say_bye -------->  FLUX_BYE, close
//   wait for done() <------------------  hard stop at end + grace, at the latest
//   join, merge
//
// Thread contract: run() on the main thread, once.

#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "bench/fluxbench/histogram.h"
#include "bench/fluxbench/options.h"
#include "bench/fluxbench/progress.h"
#include "bench/fluxbench/run_control.h"
#include "bench/fluxbench/run_result.h"
#include "bench/fluxbench/server_stats.h"
#include "bench/fluxbench/worker.h"

namespace flux::bench {

class Runner {
 public:
  explicit Runner(const Options& options);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  RunResult run();

 private:
  void spawn_workers();
  void connect_phase();
  void traffic_phase();
  void tick(uint64_t now, const char* phase);
  const char* phase_of(uint64_t t) const;
  void sleep_until(uint64_t deadline_ns) const;
  bool interrupted();
  bool all_done() const;
  bool drained(uint64_t now) const;
  Totals totals() const;
  Histogram merged(const LatencyRecorder& (Worker::*which)() const noexcept) const;
  RunResult collect();

  const Options& options_;
  RunControl control_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::optional<StatsPoller> poller_;
  ProgressLine progress_;

  uint64_t t0_ns_ = 0;
  Timeline timeline_;
  bool started_ = false;
  uint64_t next_tick_ns_ = 0;
  uint64_t last_tick_ns_ = 0;
  uint64_t last_received_ = 0;
  Histogram last_live_;
  Histogram last_send_lag_;
  std::vector<SecondSample> seconds_;
  double cpu_at_warm_end_ = 0;
  double cpu_at_end_ = 0;
  double unix_at_warm_end_ = 0;
  double unix_at_end_ = 0;
  uint64_t rss_at_end_ = 0;
  uint64_t open_file_limit_ = 0;
};

}  // namespace flux::bench
