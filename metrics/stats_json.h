#pragma once
// The JSON of GET /stats (documented key by key in docs/stats.md).
// Pure: given snapshots and history, builds the object; no I/O.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "metrics/process_stats.h"
#include "metrics/reactor_metrics.h"
#include "metrics/stats_history.h"
#include "metrics/thread_names.h"

namespace flux {

struct StatsInput {
  std::string version;
  uint16_t node_id = 0;  // --node-id
  double uptime_seconds = 0;
  double now_unix_seconds = 0;
  uint64_t now_monotonic_ns = 0;
  uint64_t block_size_bytes = 0;
  std::vector<std::string> labels;        // reactor labels, in order
  std::vector<ReactorSnapshot> reactors;  // taken for this request
  ProcessStats process;
  std::optional<StatsHistory::Window> last_1s, last_10s;
  std::vector<ThreadInfo> threads;  // every thread of the process, by tid
};

nlohmann::json build_stats_json(const StatsInput& input);

// A latency block: count, sum, max, p50..p999 since start, and the window.
nlohmann::json latency_json(const HistogramSnapshot& lifetime, const HistogramSnapshot* window);

}  // namespace flux
