#include "metrics/stats_json.h"

#include <array>
#include <numeric>
#include <type_traits>

#include "metrics/metric_table.h"

namespace flux {
namespace {

using nlohmann::json;

double seconds(uint64_t ns) {
  return double(ns) / 1e9;
}

json percentiles(const HistogramSnapshot& h) {
  return {{"p50", h.percentile_ns(0.50) / 1e9},
          {"p90", h.percentile_ns(0.90) / 1e9},
          {"p99", h.percentile_ns(0.99) / 1e9},
          {"p999", h.percentile_ns(0.999) / 1e9}};
}

// One row's value: a number, seconds for nanoseconds, an object by label
// value for an enum-labelled row.
json value_json(const MetricDef& def, uint64_t value) {
  if (def.kind == MetricKind::kNanoseconds) return seconds(value);
  return value;
}
template <size_t N>
json value_json(const MetricDef& def, const std::array<uint64_t, N>& values) {
  json out = json::object();
  for (size_t i = 0; i < def.labels.count && i < N; ++i)
    out[std::string(def.labels.value_at(i))] = values[i];
  return out;
}

uint64_t sum_of(uint64_t value) {
  return value;
}
template <size_t N>
uint64_t sum_of(const std::array<uint64_t, N>& values) {
  return std::accumulate(values.begin(), values.end(), uint64_t{0});
}

// Per-second rates between two snapshots of the same reactor (or totals):
// one key per FLUX_RATE_METRICS entry (metrics/metric_table.h), then the
// loop's utilisation (busy share of the wall time).
json rates_json(const ReactorSnapshot& newer, const ReactorSnapshot& older, double span) {
  json out = json::object();
  auto add = [&](const char* key, uint64_t a, uint64_t b) {
    const double rate = span > 0 && a >= b ? double(a - b) / span : 0.0;
    out[key] = out.value(key, 0.0) + rate;
  };
#define FLUX_RATE_KEY(key, group, field) \
  add(#key, sum_of(newer.group.field), sum_of(older.group.field));
  FLUX_RATE_METRICS(FLUX_RATE_KEY)
#undef FLUX_RATE_KEY
  const double busy = double(newer.loop.busy_ns_total - older.loop.busy_ns_total);
  const double poll = double(newer.loop.poll_ns_total - older.loop.poll_ns_total);
  out["loop_utilization"] = busy + poll > 0 ? busy / (busy + poll) : 0.0;
  return out;
}

json zero_rates() {
  return rates_json(ReactorSnapshot{}, ReactorSnapshot{}, 0);
}

struct WindowPair {
  const ReactorSnapshot* newer1 = nullptr;
  const ReactorSnapshot* older1 = nullptr;
  double span1 = 0;
  const ReactorSnapshot* newer10 = nullptr;
  const ReactorSnapshot* older10 = nullptr;
  double span10 = 0;
};

// Every row of metrics/metric_table.h under its group and field name, then
// the views derived from them.
json reactor_block(const ReactorSnapshot& s, const WindowPair& w, const StatsInput& in) {
  json block = json::object();
  s.for_each([&](std::string_view group, const MetricDef& def, const auto& value) {
    if constexpr (!std::is_same_v<std::decay_t<decltype(value)>, HistogramSnapshot>)
      if (def.kind != MetricKind::kStamp)
        block[std::string(group)][def.stats_key()] = value_json(def, value);
  });
  // Latency: since start, and over the last second (the 1 s window).
  json& latency = block[std::string(kLatencyGroup)];
  const bool has_1s = w.newer1 != nullptr;
  ReactorSnapshot::for_each_latency(
      [&](const MetricDef& def, HistogramSnapshot ReactorSnapshot::*member) {
        HistogramSnapshot last;
        if (has_1s) last = (w.newer1->*member).since(w.older1->*member);
        latency[def.stats_key()] = latency_json(s.*member, has_1s ? &last : nullptr);
      });
  const uint64_t last_turn = s.loop.last_turn_monotonic_ns;
  const uint64_t turn_age = in.now_monotonic_ns > last_turn ? in.now_monotonic_ns - last_turn : 0;
  block["connections"]["open"] = s.open_connections();
  block["loop"]["last_turn_age_seconds"] = seconds(turn_age);
  block["pool"]["block_size_bytes"] = in.block_size_bytes;
  block["rates"] = {
      {"1s", has_1s ? rates_json(*w.newer1, *w.older1, w.span1) : zero_rates()},
      {"10s", w.newer10 ? rates_json(*w.newer10, *w.older10, w.span10) : zero_rates()}};
  return block;
}

json threads_json(const StatsInput& in) {
  json threads = json::array();
  for (const ThreadInfo& t : in.threads) threads.push_back({{"tid", t.tid}, {"name", t.name}});
  return threads;
}

// Every process row of the table, then the CPU share over the last second.
json process_json(const StatsInput& in) {
  double cpu_percent = 0;
  if (in.last_1s && in.last_1s->seconds() > 0)
    cpu_percent = 100.0 *
                  (in.last_1s->newer.process.cpu_seconds_total -
                   in.last_1s->older.process.cpu_seconds_total) /
                  in.last_1s->seconds();
  json out = {{"cpu_percent_1s", cpu_percent}};
#define FLUX_PROCESS_KEY(field, type, kind, name, help) out[#field] = in.process.field;
  FLUX_PROCESS_METRICS(FLUX_PROCESS_KEY)
#undef FLUX_PROCESS_KEY
  return out;
}

}  // namespace

json latency_json(const HistogramSnapshot& lifetime, const HistogramSnapshot* window) {
  json out = percentiles(lifetime);
  out["count"] = lifetime.count();
  out["sum"] = seconds(lifetime.sum_ns);
  out["max"] = seconds(lifetime.max_ns);
  json last = window ? percentiles(*window) : percentiles(HistogramSnapshot{});
  last["count"] = window ? window->count() : 0;
  out["last_1s"] = std::move(last);
  return out;
}

json build_stats_json(const StatsInput& in) {
  const size_t n = in.reactors.size();
  auto window_for = [&](size_t i) {
    WindowPair w;
    if (in.last_1s && i < in.last_1s->newer.reactors.size() &&
        i < in.last_1s->older.reactors.size())
      w = {&in.last_1s->newer.reactors[i], &in.last_1s->older.reactors[i], in.last_1s->seconds()};
    if (in.last_10s && i < in.last_10s->newer.reactors.size() &&
        i < in.last_10s->older.reactors.size()) {
      w.newer10 = &in.last_10s->newer.reactors[i];
      w.older10 = &in.last_10s->older.reactors[i];
      w.span10 = in.last_10s->seconds();
    }
    return w;
  };
  json reactors = json::array();
  for (size_t i = 0; i < n; ++i) {
    json block = reactor_block(in.reactors[i], window_for(i), in);
    block["reactor"] = i < in.labels.size() ? in.labels[i] : std::to_string(i);
    reactors.push_back(std::move(block));
  }
  // Totals: the same block over summed snapshots (and summed windows).
  ReactorSnapshot total = total_of(in.reactors);
  ReactorSnapshot t1n, t1o, t10n, t10o;
  WindowPair tw;
  if (in.last_1s) {
    t1n = total_of(in.last_1s->newer.reactors);
    t1o = total_of(in.last_1s->older.reactors);
    tw.newer1 = &t1n;
    tw.older1 = &t1o;
    tw.span1 = in.last_1s->seconds();
  }
  if (in.last_10s) {
    t10n = total_of(in.last_10s->newer.reactors);
    t10o = total_of(in.last_10s->older.reactors);
    tw.newer10 = &t10n;
    tw.older10 = &t10o;
    tw.span10 = in.last_10s->seconds();
  }
  return {{"version", in.version},
          {"node", in.node_id},
          {"uptime_seconds", in.uptime_seconds},
          {"now_unix_seconds", in.now_unix_seconds},
          {"total", reactor_block(total, tw, in)},
          {"reactors", std::move(reactors)},
          {"process", process_json(in)},
          {"threads", threads_json(in)}};
}

}  // namespace flux
