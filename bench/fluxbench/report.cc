#include "bench/fluxbench/report.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/fluxbench/clock.h"
#include "bench/fluxbench/duration.h"

namespace flux::bench {
namespace {

using Json = nlohmann::ordered_json;

const char* result_word(const RunResult& r) {
  switch (exit_code(r)) {
    case 0:
      return "ok";
    case 1:
      return "errors";
    case 3:
      return "no-connections";
    default:
      return "interrupted";
  }
}

Json number_or_null(double v) {
  return std::isnan(v) ? Json(nullptr) : Json(v);
}

double round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

Json latency_json(const Histogram& h) {
  auto us = [](uint64_t ns) { return round3(ns_to_us(ns)); };
  return Json{{"count", h.count()},
              {"mean", round3(h.mean_ns() / 1e3)},
              {"p50", us(h.percentile_ns(0.50))},
              {"p90", us(h.percentile_ns(0.90))},
              {"p99", us(h.percentile_ns(0.99))},
              {"p999", us(h.percentile_ns(0.999))},
              {"p9999", us(h.percentile_ns(0.9999))},
              {"max", us(h.max_ns())}};
}

Json config_json(const Options& o) {
  const bool open = o.mode == LoadMode::kOpen;
  return Json{
      {"mode", open ? "open" : "closed"},
      {"conns", o.conns},
      {"threads", o.threads},
      {"window", open ? Json(nullptr) : Json(o.window)},
      {"rate_per_second", open ? Json(o.rate) : Json(nullptr)},
      {"size_bytes", o.size},
      {"src_ips", o.src_ips},
      {"proxy_v2", o.proxy_v2},
      {"connect_rate_per_second", o.connect_rate > 0 ? Json(o.connect_rate) : Json(nullptr)},
      {"warmup_seconds", ns_to_seconds(o.warmup_ns)},
      {"duration_seconds", ns_to_seconds(o.duration_ns)},
      {"grace_seconds", ns_to_seconds(o.grace_ns)},
      {"churn_per_second", o.churn_rate > 0 ? Json(o.churn_rate) : Json(nullptr)},
      {"resume_on_close", o.resume_on_close},
      {"stats_url", o.stats_url.empty() ? Json(nullptr) : Json(o.stats_url)}};
}

Json server_json(const ServerView& s) {
  return Json{{"samples", s.samples},
              {"poll_failures", s.poll_failures},
              {"cpu_percent", number_or_null(round3(s.cpu_percent))},
              {"cpu_percent_1s_max", number_or_null(s.cpu_percent_1s_max)},
              {"rss_bytes_start", number_or_null(s.rss_bytes_start)},
              {"rss_bytes_end", number_or_null(s.rss_bytes_end)},
              {"loop_lag_p99_us_median", number_or_null(round3(s.loop_lag_p99_us_median))},
              {"loop_lag_p99_us_max", number_or_null(round3(s.loop_lag_p99_us_max))},
              {"echo_p99_us_median", number_or_null(round3(s.echo_p99_us_median))},
              {"buffer_allocations_measured", number_or_null(s.buffer_allocations)}};
}

double frames_per_second(const RunResult& r) {
  return static_cast<double>(r.totals.received_measured) / r.measured_seconds;
}

double megabytes_per_second(const RunResult& r) {
  return static_cast<double>(r.totals.bytes_measured) / r.measured_seconds / 1e6;
}

std::string fmt_us(uint64_t ns) {
  char buf[32];
  const double us = ns_to_us(ns);
  std::snprintf(buf, sizeof buf, us >= 1000 ? "%.0f" : "%.1f", us);
  return buf;
}

std::string mib(double bytes) {
  char buf[32];
  if (std::isnan(bytes)) return "n/a";
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}

std::string figure(double v, const char* format) {
  if (std::isnan(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

Json seconds_json(const RunResult& r) {
  Json list = Json::array();
  for (const SecondSample& s : r.seconds) {
    list.push_back({{"elapsed_seconds", round3(s.elapsed_s)},
                    {"echoes_per_second", std::round(s.echoes_per_second)},
                    {"p99_us", round3(ns_to_us(s.p99_ns))},
                    {"send_lag_p99_us", r.options.mode == LoadMode::kOpen
                                            ? Json(round3(ns_to_us(s.send_lag_p99_ns)))
                                            : Json(nullptr)}});
  }
  return list;
}

// "p99 of each measured second: median 310, best 95, worst 7012 us"
void print_seconds(const RunResult& r, std::FILE* out) {
  if (r.seconds.empty()) return;
  std::vector<uint64_t> p99s;
  for (const SecondSample& s : r.seconds) p99s.push_back(s.p99_ns);
  std::sort(p99s.begin(), p99s.end());
  std::fprintf(out,
               "  per second  p99 median %s us, best %s, worst %s (%zu whole seconds measured)\n",
               fmt_us(p99s[p99s.size() / 2]).c_str(), fmt_us(p99s.front()).c_str(),
               fmt_us(p99s.back()).c_str(), p99s.size());
}

void print_load_line(const RunResult& r, std::FILE* out) {
  const Options& o = r.options;
  std::fprintf(out, "fluxbench  %s:%u  %u conns over %u thread%s, ", o.host.c_str(), o.port,
               o.conns, o.threads, o.threads == 1 ? "" : "s");
  if (o.mode == LoadMode::kOpen) {
    std::fprintf(out, "open loop %.0f frames/s", o.rate);
  } else {
    std::fprintf(out, "closed loop window %u", o.window);
  }
  std::fprintf(out, ", %u B payloads; %s warm-up, %s measured\n", o.size,
               format_duration(o.warmup_ns).c_str(), format_duration(o.duration_ns).c_str());
}

void print_server(const ServerView& s, std::FILE* out) {
  std::fprintf(
      out,
      "  server      CPU %s%% of one core (1 s max %s%%), RSS %s -> %s, loop lag p99 %s us "
      "(median of 1 s windows; max %s), buffer allocations while measured: %s\n",
      figure(s.cpu_percent, "%.1f").c_str(), figure(s.cpu_percent_1s_max, "%.0f").c_str(),
      mib(s.rss_bytes_start).c_str(), mib(s.rss_bytes_end).c_str(),
      figure(s.loop_lag_p99_us_median, "%.1f").c_str(),
      figure(s.loop_lag_p99_us_max, "%.1f").c_str(), figure(s.buffer_allocations, "%.0f").c_str());
}

}  // namespace

int exit_code(const RunResult& r) {
  if (r.interrupted) return 130;
  if (r.totals.errors() > 0) return 1;
  if (r.totals.ready == 0) return 3;
  return 0;
}

void print_summary(const RunResult& r, std::FILE* out) {
  const Totals& t = r.totals;
  print_load_line(r, out);
  std::fprintf(out,
               "  conns       %llu ready, %llu connect failed, %llu handshake failed, "
               "%llu closed by the server\n",
               static_cast<unsigned long long>(t.ready),
               static_cast<unsigned long long>(t.connect_failed),
               static_cast<unsigned long long>(t.handshake_failed),
               static_cast<unsigned long long>(t.closed_by_server));
  std::fprintf(out, "  throughput  %.0f frames/s, %.2f MB/s of payload echoed\n",
               frames_per_second(r), megabytes_per_second(r));
  const Histogram& h = r.latency;
  std::fprintf(out,
               "  latency us  p50 %s  p90 %s  p99 %s  p99.9 %s  p99.99 %s  max %s  (%llu echoes)\n",
               fmt_us(h.percentile_ns(0.5)).c_str(), fmt_us(h.percentile_ns(0.9)).c_str(),
               fmt_us(h.percentile_ns(0.99)).c_str(), fmt_us(h.percentile_ns(0.999)).c_str(),
               fmt_us(h.percentile_ns(0.9999)).c_str(), fmt_us(h.max_ns()).c_str(),
               static_cast<unsigned long long>(h.count()));
  print_seconds(r, out);
  if (t.lost > 0) {
    std::fprintf(out,
                 "  warning     %llu frames were never echoed: the latency above leaves them out\n",
                 static_cast<unsigned long long>(t.lost));
  }
  if (r.options.mode == LoadMode::kOpen) {
    std::fprintf(out, "  send lag    p99 %s us, max %s us (client lateness, included in latency)\n",
                 fmt_us(r.send_lag.percentile_ns(0.99)).c_str(),
                 fmt_us(r.send_lag.max_ns()).c_str());
  }
  std::fprintf(out,
               "  frames      %llu sent, %llu echoed; %llu mismatched, %llu lost, %llu unsent, "
               "%llu server errors\n",
               static_cast<unsigned long long>(t.sent), static_cast<unsigned long long>(t.received),
               static_cast<unsigned long long>(t.mismatched),
               static_cast<unsigned long long>(t.lost), static_cast<unsigned long long>(t.unsent),
               static_cast<unsigned long long>(t.server_errors));
  if (r.options.churn_rate > 0 || r.options.resume_on_close) {
    const Histogram& rl = r.resume_latency;
    std::fprintf(out,
                 "  churn       %llu drops, %llu closed by the server, %llu resumes (%llu tried "
                 "again), %llu resume failures; %llu frames replayed, %llu re-sent\n"
                 "  resume us   p50 %s  p99 %s  max %s  (drop -> FLUX_READY)\n",
                 static_cast<unsigned long long>(t.drops),
                 static_cast<unsigned long long>(t.server_closes),
                 static_cast<unsigned long long>(t.resumes),
                 static_cast<unsigned long long>(t.resume_retries),
                 static_cast<unsigned long long>(t.resume_failures),
                 static_cast<unsigned long long>(t.replayed),
                 static_cast<unsigned long long>(t.resent), fmt_us(rl.percentile_ns(0.5)).c_str(),
                 fmt_us(rl.percentile_ns(0.99)).c_str(), fmt_us(rl.max_ns()).c_str());
  }
  std::fprintf(out, "  client      CPU %.1f%% of one core, RSS %s\n", r.client_cpu_percent,
               mib(static_cast<double>(r.client_rss_bytes)).c_str());
  if (r.server) print_server(*r.server, out);
  for (const auto& [why, n] : r.failures) {
    std::fprintf(out, "  failure     %llu x %s\n", static_cast<unsigned long long>(n), why.c_str());
  }
  std::fprintf(out, "result: %s\n", result_word(r));
}

void print_json(const RunResult& r, std::FILE* out) {
  const Totals& t = r.totals;
  Json j;
  j["tool"] = "fluxbench";
  j["target"] = r.options.host + ":" + std::to_string(r.options.port);
  j["config"] = config_json(r.options);
  j["measure"] = {{"start_unix_seconds", r.measure_start_unix},
                  {"end_unix_seconds", r.measure_end_unix},
                  {"seconds", r.measured_seconds}};
  j["connections"] = {{"target", r.options.conns},
                      {"ready", t.ready},
                      {"connect_failed", t.connect_failed},
                      {"handshake_failed", t.handshake_failed},
                      {"closed_by_server", t.closed_by_server},
                      {"closed_clean", t.closed_clean},
                      {"open_file_limit", r.open_file_limit}};
  j["frames"] = {{"sent", t.sent},
                 {"received", t.received},
                 {"received_measured", t.received_measured},
                 {"mismatched", t.mismatched},
                 {"lost", t.lost},
                 {"unsent", t.unsent},
                 {"server_errors", t.server_errors}};
  j["errors"] = t.errors();
  j["failures"] = Json::object();
  for (const auto& [why, n] : r.failures) j["failures"][why] = n;
  j["throughput"] = {{"frames_per_second", round3(frames_per_second(r))},
                     {"megabytes_per_second", round3(megabytes_per_second(r))}};
  j["latency_us"] = latency_json(r.latency);
  j["send_lag_us"] = r.options.mode == LoadMode::kOpen ? latency_json(r.send_lag) : Json(nullptr);
  j["churn"] = r.options.churn_rate > 0 || r.options.resume_on_close
                   ? Json{{"drops", t.drops},
                          {"server_closes", t.server_closes},
                          {"resumes", t.resumes},
                          {"resume_retries", t.resume_retries},
                          {"resume_failures", t.resume_failures},
                          {"replayed_frames", t.replayed},
                          {"resent_frames", t.resent},
                          {"resume_latency_us", latency_json(r.resume_latency)}}
                   : Json(nullptr);
  j["seconds"] = seconds_json(r);
  j["client"] = {{"cpu_percent", round3(r.client_cpu_percent)}, {"rss_bytes", r.client_rss_bytes}};
  j["server"] = r.server ? server_json(*r.server) : Json(nullptr);
  j["result"] = result_word(r);
  std::fprintf(out, "%s\n", j.dump(2).c_str());
}

}  // namespace flux::bench
