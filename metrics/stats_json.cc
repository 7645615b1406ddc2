#include "metrics/stats_json.h"

#include "gateway/protocol.h"

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

template <size_t N, typename Enum>
json by_name(const std::array<uint64_t, N>& values) {
  json out = json::object();
  for (size_t i = 0; i < N; ++i) out[std::string(to_string(static_cast<Enum>(i)))] = values[i];
  return out;
}

json connections_json(const ReactorSnapshot& s) {
  auto state = [&](ConnState st) { return s.by_state[static_cast<size_t>(st)]; };
  return {{"connecting", state(ConnState::kConnecting)},
          {"handshake", state(ConnState::kHandshake)},
          {"ready", state(ConnState::kReady)},
          {"closing", state(ConnState::kClosing)},
          {"open", s.open_connections()},
          {"accepted_total", s.accepted_total},
          {"accept_errors_total", s.accept_errors_total},
          {"closed_total", by_name<kCloseReasonCount, CloseReason>(s.closed_total)},
          {"proxy_header_errors_total",
           by_name<kProxyHeaderErrorCount, ProxyHeaderError>(s.proxy_header_errors_total)}};
}

json traffic_json(const ReactorSnapshot& s) {
  return {{"frames_in_total", s.frames_in_total},
          {"frames_out_total", s.frames_out_total},
          {"bytes_in_total", s.bytes_in_total},
          {"bytes_out_total", s.bytes_out_total},
          {"bytes_queued", s.bytes_queued},
          {"backpressure_pauses_total", s.backpressure_pauses_total},
          {"errors_sent_total", by_name<kErrorCodeCount, ErrorCode>(s.errors_sent_total)}};
}

// Per-second rates between two snapshots of the same reactor (or totals).
json rates_json(const ReactorSnapshot& newer, const ReactorSnapshot& older, double span) {
  auto rate = [span](uint64_t a, uint64_t b) {
    return span > 0 && a >= b ? double(a - b) / span : 0.0;
  };
  const double busy = double(newer.busy_ns_total - older.busy_ns_total);
  const double poll = double(newer.poll_ns_total - older.poll_ns_total);
  return {{"frames_in", rate(newer.frames_in_total, older.frames_in_total)},
          {"frames_out", rate(newer.frames_out_total, older.frames_out_total)},
          {"bytes_in", rate(newer.bytes_in_total, older.bytes_in_total)},
          {"bytes_out", rate(newer.bytes_out_total, older.bytes_out_total)},
          {"accepted", rate(newer.accepted_total, older.accepted_total)},
          {"closed", rate(newer.closed_connections(), older.closed_connections())},
          {"buffer_allocations",
           rate(newer.buffer_allocations_total(), older.buffer_allocations_total())},
          {"buffer_releases", rate(newer.buffer_releases_total(), older.buffer_releases_total())},
          {"context_switches_voluntary",
           rate(newer.voluntary_switches_total, older.voluntary_switches_total)},
          {"context_switches_involuntary",
           rate(newer.involuntary_switches_total, older.involuntary_switches_total)},
          {"loop_iterations", rate(newer.iterations_total, older.iterations_total)},
          {"loop_utilization", busy + poll > 0 ? busy / (busy + poll) : 0.0}};
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

json reactor_block(const ReactorSnapshot& s, const WindowPair& w, const StatsInput& in) {
  HistogramSnapshot lag_1s, poll_1s, busy_1s, echo_1s;
  const bool has_1s = w.newer1 != nullptr;
  if (has_1s) {
    lag_1s = w.newer1->loop_lag.since(w.older1->loop_lag);
    poll_1s = w.newer1->poll_wait.since(w.older1->poll_wait);
    busy_1s = w.newer1->loop_busy.since(w.older1->loop_busy);
    echo_1s = w.newer1->echo_latency.since(w.older1->echo_latency);
  }
  const uint64_t turn_age = in.now_monotonic_ns > s.last_turn_monotonic_ns
                                ? in.now_monotonic_ns - s.last_turn_monotonic_ns
                                : 0;
  return {
      {"connections", connections_json(s)},
      {"traffic", traffic_json(s)},
      {"rates",
       {{"1s", has_1s ? rates_json(*w.newer1, *w.older1, w.span1) : zero_rates()},
        {"10s", w.newer10 ? rates_json(*w.newer10, *w.older10, w.span10) : zero_rates()}}},
      {"loop",
       {{"iterations_total", s.iterations_total},
        {"busy_seconds_total", seconds(s.busy_ns_total)},
        {"poll_seconds_total", seconds(s.poll_ns_total)},
        {"last_turn_age_seconds", seconds(turn_age)}}},
      {"latency_seconds",
       {{"echo", latency_json(s.echo_latency, has_1s ? &echo_1s : nullptr)},
        {"poll_wait", latency_json(s.poll_wait, has_1s ? &poll_1s : nullptr)},
        {"loop_busy", latency_json(s.loop_busy, has_1s ? &busy_1s : nullptr)},
        {"loop_lag", latency_json(s.loop_lag, has_1s ? &lag_1s : nullptr)}}},
      {"buffers",
       {{"block_size_bytes", in.block_size_bytes},
        {"acquires_total", s.block_acquires_total},
        {"allocations_total", s.buffer_allocations_total()},
        {"releases_total", s.buffer_releases_total()},
        {"bytes_in_use", s.block_bytes_in_use},
        {"bytes_free", s.block_bytes_free}}},
      {"sessions",
       {{"attached", s.sessions_attached},
        {"detached", s.sessions_detached},
        {"created_total", s.sessions_created_total},
        {"resumes_total", by_name<kResumeResultCount, ResumeResult>(s.resumes_total)},
        {"frames_replayed_total", s.frames_replayed_total},
        {"expired_total", s.sessions_expired_total},
        {"evicted_total", s.sessions_evicted_total},
        {"replay_memory_bytes", s.replay_memory_bytes},
        {"replay_frame_bytes", s.replay_frame_bytes}}},
      {"context_switches",
       {{"voluntary_total", s.voluntary_switches_total},
        {"involuntary_total", s.involuntary_switches_total}}},
  };
}

json threads_json(const StatsInput& in) {
  json threads = json::array();
  for (const ThreadInfo& t : in.threads) threads.push_back({{"tid", t.tid}, {"name", t.name}});
  return threads;
}

json process_json(const StatsInput& in) {
  double cpu_percent = 0;
  if (in.last_1s && in.last_1s->seconds() > 0)
    cpu_percent = 100.0 *
                  (in.last_1s->newer.process.cpu_seconds_total -
                   in.last_1s->older.process.cpu_seconds_total) /
                  in.last_1s->seconds();
  return {{"cpu_seconds_total", in.process.cpu_seconds_total},
          {"cpu_percent_1s", cpu_percent},
          {"resident_memory_bytes", in.process.resident_memory_bytes},
          {"open_fds", in.process.open_fds},
          {"max_fds", in.process.max_fds},
          {"threads", in.process.threads},
          {"start_time_unix_seconds", in.process.start_time_unix_seconds}};
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
