#pragma once
// StatsHistory: the metrics thread's memory of the last few seconds.
//
// Once a second the sampler copies every reactor's metrics block and the
// process figures into a ring of kSamples. Rates over 1 s and 10 s, CPU %,
// and the "last second" latency percentiles are differences between two
// samples of this ring, so they cost the reactors nothing.
//
// Thread contract: any thread (a mutex guards the ring; never the reactor).

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "metrics/process_stats.h"
#include "metrics/reactor_metrics.h"

namespace flux {

struct Sample {
  uint64_t monotonic_ns = 0;
  std::vector<ReactorSnapshot> reactors;  // in reactor order
  ProcessStats process;
};

// The sum over reactors (histograms merged; oldest "last turn" kept).
ReactorSnapshot total_of(const std::vector<ReactorSnapshot>& reactors);

class StatsHistory {
 public:
  static constexpr size_t kSamples = 11;  // now and 10 s back

  void add(Sample sample);
  // The newest sample and the one `seconds_back` before it (or the oldest
  // kept, if the gateway is younger); nullopt until two samples exist.
  struct Window {
    Sample newer, older;
    double seconds() const noexcept {
      return double(newer.monotonic_ns - older.monotonic_ns) / 1e9;
    }
  };
  std::optional<Window> window(size_t seconds_back) const;
  // The newest sample's process figures; nullopt before the first sample.
  std::optional<ProcessStats> latest_process() const;

 private:
  mutable std::mutex mutex_;
  std::deque<Sample> samples_;
};

}  // namespace flux
