#pragma once
// The gateway's own view (its GET /stats, docs/stats.md), polled once a
// second and summarised over the measured window beside the client's view.
//
// Missing keys (a server without the metrics work, or the baseline) are
// NaN, printed as null / "n/a": the poller never fails the run.
//
// Thread contract: the main thread only.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/fluxbench/http_get.h"

namespace flux::bench {

struct ServerSample {
  uint64_t mono_ns = 0;
  double cpu_seconds_total = 0;   // process.cpu_seconds_total
  double cpu_percent_1s = 0;      // process.cpu_percent_1s (of one core)
  double rss_bytes = 0;           // process.resident_memory_bytes
  double loop_lag_p99_s = 0;      // total.latency_seconds.loop_lag.last_1s.p99
  double echo_p99_s = 0;          // total.latency_seconds.echo_latency.last_1s.p99
  double buffer_allocations = 0;  // total.pool.{block,frame_node}_allocations_total
  double connections_open = 0;    // total.connections.open
};

// Parses a /stats body; nullopt if it is not a JSON object.
std::optional<ServerSample> parse_server_stats(const std::string& body, uint64_t mono_ns);

// The server's side of the measured window.
struct ServerView {
  int samples = 0;         // inside the window
  int poll_failures = 0;   // over the whole run
  double cpu_percent = 0;  // from cpu_seconds_total between the window's edges
  double cpu_percent_1s_max = 0;
  double rss_bytes_start = 0;  // at the start of the measured window (after warm-up)
  double rss_bytes_end = 0;
  double loop_lag_p99_us_median = 0;  // of the 1-second p99s inside the window
  double loop_lag_p99_us_max = 0;
  double echo_p99_us_median = 0;
  double buffer_allocations = 0;  // growth of the buffer pool inside the window
};

class StatsPoller {
 public:
  explicit StatsPoller(HttpUrl url) : url_(std::move(url)) {}

  // One GET, bounded by `timeout_ms`; the sample is kept. Returns it.
  std::optional<ServerSample> poll(int timeout_ms);

  // Polls at an edge of the measured window (right after warm-up, right
  // after the duration) and remembers the sample as that edge.
  void poll_window_start(int timeout_ms);
  void poll_window_end(int timeout_ms);

  // The measured window: counters from the edge samples, per-second
  // figures from the samples whose last second lies inside it.
  ServerView summarize() const;

  // The most recent sample, if any.
  const ServerSample* latest() const { return samples_.empty() ? nullptr : &samples_.back(); }

 private:
  HttpUrl url_;
  std::vector<ServerSample> samples_;
  std::optional<size_t> start_;  // index of the window's edge samples
  std::optional<size_t> end_;
  int failures_ = 0;
};

}  // namespace flux::bench
