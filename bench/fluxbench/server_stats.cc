#include "bench/fluxbench/server_stats.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>

#include "bench/fluxbench/clock.h"

namespace flux::bench {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double at(const nlohmann::json& root, std::initializer_list<const char*> path) {
  const nlohmann::json* node = &root;
  for (const char* key : path) {
    if (!node->is_object()) return kNaN;
    const auto it = node->find(key);
    if (it == node->end()) return kNaN;
    node = &*it;
  }
  return node->is_number() ? node->get<double>() : kNaN;
}

double median(std::vector<double> values) {
  std::erase_if(values, [](double v) { return std::isnan(v); });
  if (values.empty()) return kNaN;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double max_of(const std::vector<double>& values) {
  double best = kNaN;
  for (double v : values) {
    if (!std::isnan(v) && (std::isnan(best) || v > best)) best = v;
  }
  return best;
}

}  // namespace

std::optional<ServerSample> parse_server_stats(const std::string& body, uint64_t mono_ns) {
  const auto root = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!root.is_object()) return std::nullopt;
  ServerSample s;
  s.mono_ns = mono_ns;
  s.cpu_seconds_total = at(root, {"process", "cpu_seconds_total"});
  s.cpu_percent_1s = at(root, {"process", "cpu_percent_1s"});
  s.rss_bytes = at(root, {"process", "resident_memory_bytes"});
  s.loop_lag_p99_s = at(root, {"total", "latency_seconds", "loop_lag", "last_1s", "p99"});
  s.echo_p99_s = at(root, {"total", "latency_seconds", "echo_latency", "last_1s", "p99"});
  // Pool growth: blocks and frame-node chunks (flux_buffer_allocations_total).
  s.buffer_allocations = at(root, {"total", "pool", "block_allocations_total"}) +
                         at(root, {"total", "pool", "frame_node_allocations_total"});
  s.connections_open = at(root, {"total", "connections", "open"});
  return s;
}

std::optional<ServerSample> StatsPoller::poll(int timeout_ms) {
  const auto response = http_get(url_, timeout_ms);
  const uint64_t now = mono_ns();
  std::optional<ServerSample> sample;
  if (response && response->status == 200) sample = parse_server_stats(response->body, now);
  if (!sample) {
    ++failures_;
    return std::nullopt;
  }
  samples_.push_back(*sample);
  return sample;
}

void StatsPoller::poll_window_start(int timeout_ms) {
  if (poll(timeout_ms)) start_ = samples_.size() - 1;
}

void StatsPoller::poll_window_end(int timeout_ms) {
  if (poll(timeout_ms)) end_ = samples_.size() - 1;
}

ServerView StatsPoller::summarize() const {
  ServerView view;
  view.poll_failures = failures_;
  view.cpu_percent = view.rss_bytes_start = view.rss_bytes_end = kNaN;
  view.loop_lag_p99_us_median = view.loop_lag_p99_us_max = view.echo_p99_us_median = kNaN;
  view.buffer_allocations = view.cpu_percent_1s_max = kNaN;
  if (!start_ || !end_ || *end_ <= *start_) return view;
  const ServerSample& first = samples_[*start_];
  const ServerSample& last = samples_[*end_];
  std::vector<double> lags, echoes, cpus;
  for (size_t i = *start_ + 1; i <= *end_; ++i) {
    // A sample's "last second" must not reach back into the warm-up.
    if (samples_[i].mono_ns < first.mono_ns + 900 * kNsPerMs) continue;
    lags.push_back(samples_[i].loop_lag_p99_s * 1e6);
    echoes.push_back(samples_[i].echo_p99_s * 1e6);
    cpus.push_back(samples_[i].cpu_percent_1s);
  }
  view.samples = static_cast<int>(lags.size());
  const double wall = ns_to_seconds(last.mono_ns - first.mono_ns);
  view.cpu_percent = (last.cpu_seconds_total - first.cpu_seconds_total) / wall * 100.0;
  view.cpu_percent_1s_max = max_of(cpus);
  view.rss_bytes_start = first.rss_bytes;
  view.rss_bytes_end = last.rss_bytes;
  view.loop_lag_p99_us_median = median(lags);
  view.loop_lag_p99_us_max = max_of(lags);
  view.echo_p99_us_median = median(echoes);
  view.buffer_allocations = last.buffer_allocations - first.buffer_allocations;
  return view;
}

}  // namespace flux::bench
