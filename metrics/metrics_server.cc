#include "metrics/metrics_server.h"

#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "common/monotonic_clock.h"
#include "dashboard/embedded_files.h"
#include "metrics/http_front.h"
#include "metrics/process_stats.h"
#include "metrics/prometheus_collector.h"
#include "metrics/stats_json.h"

namespace flux {
namespace {

constexpr size_t kDefaultListing = 100;
constexpr size_t kMaxListing = 10'000;

double unix_now() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return double(tv.tv_sec) + double(tv.tv_usec) / 1e6;
}

nlohmann::json row_json(const ConnectionInfo& c) {
  return {{"id", c.id},
          {"reactor", c.reactor},
          {"peer", c.peer},
          {"state", c.state},
          {"age_seconds", c.age_seconds},
          {"frames_in", c.frames_in},
          {"frames_out", c.frames_out},
          {"bytes_in", c.bytes_in},
          {"bytes_out", c.bytes_out},
          {"bytes_pending", c.bytes_pending}};
}

// Orders rows "busiest first" by the chosen key; false for an unknown key.
bool sort_rows(std::vector<ConnectionInfo>& rows, const std::string& key) {
  auto by = [&rows](auto field) {
    std::stable_sort(
        rows.begin(), rows.end(),
        [field](const ConnectionInfo& a, const ConnectionInfo& b) { return field(a) > field(b); });
  };
  if (key == "pending")
    by([](const ConnectionInfo& c) { return c.bytes_pending; });
  else if (key == "age")
    by([](const ConnectionInfo& c) { return c.age_seconds; });
  else if (key == "bytes_in")
    by([](const ConnectionInfo& c) { return c.bytes_in; });
  else if (key == "bytes_out")
    by([](const ConnectionInfo& c) { return c.bytes_out; });
  else
    return false;
  return true;
}

HttpFrontConfig front_config(const MetricsServerConfig& config) {
  HttpFrontConfig front;
  front.bind = config.bind;
  front.port = config.port;
  front.max_connections = config.max_http_connections;
  front.request_deadline = config.request_deadline;
  front.write_deadline = config.request_deadline;
  front.turn_wait = config.listing_deadline;
  front.worker_threads = config.handler_threads;
  return front;
}

HttpResponse content(std::string body, std::string type, bool no_store = false) {
  HttpResponse res;
  res.body = std::move(body);
  res.content_type = std::move(type);
  if (no_store) res.headers.emplace_back("Cache-Control", "no-store");
  return res;
}

HttpResponse error_response(int status, std::string body) {
  HttpResponse res = content(std::move(body), "text/plain");
  res.status = status;
  return res;
}

}  // namespace

MetricsServer::MetricsServer(MetricsServerConfig config, std::vector<ReactorHandle> reactors)
    : config_(std::move(config)),
      reactors_(std::move(reactors)),
      http_(std::make_unique<HttpFront>(front_config(config_))),
      started_ns_(monotonic_ns()) {}

MetricsServer::~MetricsServer() {
  stop();
}

bool MetricsServer::start(std::string& error) {
  install_routes();
  if (!http_->listen(error)) return false;
  port_ = http_->port();
  http_->start();
  sampler_thread_ = std::thread([this] {
    name_this_thread("flux-sampler");
    sample_loop();
  });
  return true;
}

void MetricsServer::stop() {
  {
    std::lock_guard lock(sampler_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  sampler_wake_.notify_all();
  if (http_) http_->stop();
  if (sampler_thread_.joinable()) sampler_thread_.join();
}

void MetricsServer::install_routes() {
  using Run = HttpFront::Run;
  HttpFront& http = *http_;
  http.route("/metrics", Run::kWorker, [this](const HttpRequest&) {
    return content(metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.route("/stats", Run::kWorker, [this](const HttpRequest& req) {
    const bool pretty = req.has_param("pretty") && req.param("pretty") != "0";
    return content(stats_json(pretty), "application/json", /*no_store=*/true);
  });
  // On the IO thread: a few atomic loads, answered whatever the pool is doing.
  http.route("/healthz", Run::kIoThread, [this](const HttpRequest&) {
    auto [status, body] = health();
    HttpResponse res = content(std::move(body), "text/plain; charset=utf-8");
    res.status = status;
    return res;
  });
  http.route("/connections", Run::kOneAtATime,
             [this](const HttpRequest& req) { return connections_response(req); });
  for (const EmbeddedFile& file : dashboard_files()) {
    http.route(std::string(file.path), Run::kIoThread, [&file](const HttpRequest&) {
      return content(std::string(file.body), std::string(file.content_type));
    });
  }
}

HttpResponse MetricsServer::connections_response(const HttpRequest& req) const {
  size_t limit = kDefaultListing;
  if (req.has_param("limit")) {
    const std::string text = req.param("limit");
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
    if (ec != std::errc{} || end != text.data() + text.size())
      return error_response(400, "limit: expected a number\n");
    limit = std::min(limit, kMaxListing);
  }
  const std::string sort = req.has_param("sort") ? req.param("sort") : "pending";
  if (std::vector<ConnectionInfo> probe; !sort_rows(probe, sort))
    return error_response(400, "sort: one of pending, age, bytes_in, bytes_out\n");
  auto body = connections_json(limit, sort);
  if (!body) return error_response(503, "a reactor did not answer in time\n");
  return content(std::move(*body), "application/json", /*no_store=*/true);
}

std::vector<ReactorSnapshot> MetricsServer::snapshots() const {
  std::vector<ReactorSnapshot> out;
  out.reserve(reactors_.size());
  for (const ReactorHandle& r : reactors_) out.push_back(snapshot(*r.metrics));
  return out;
}

void MetricsServer::sample_loop() {
  std::unique_lock lock(sampler_mutex_);
  while (!stopping_) {
    lock.unlock();
    history_.add(Sample{monotonic_ns(), snapshots(), read_process_stats()});
    lock.lock();
    sampler_wake_.wait_for(lock, config_.sample_interval, [this] { return stopping_; });
  }
}

// Reading /proc costs milliseconds with many descriptors open (the fd count
// lists /proc/self/fd), so requests serve the sampler's once-a-second copy.
ProcessStats MetricsServer::process_stats() const {
  if (auto latest = history_.latest_process()) return *latest;
  return read_process_stats();
}

std::string MetricsServer::metrics_text() const {
  ScrapeInput input{config_.version, config_.node_id, {}, snapshots(), process_stats()};
  for (const ReactorHandle& r : reactors_) input.labels.push_back(r.label);
  return serialize_metrics(build_metric_families(input));
}

std::string MetricsServer::stats_json(bool pretty) const {
  StatsInput in;
  in.version = config_.version;
  in.node_id = config_.node_id;
  in.now_monotonic_ns = monotonic_ns();
  in.uptime_seconds = double(in.now_monotonic_ns - started_ns_) / 1e9;
  in.now_unix_seconds = unix_now();
  in.block_size_bytes = config_.block_size_bytes;
  in.threads = list_threads();
  for (const ReactorHandle& r : reactors_) in.labels.push_back(r.label);
  in.reactors = snapshots();
  in.process = process_stats();
  in.last_1s = history_.window(1);
  in.last_10s = history_.window(10);
  return build_stats_json(in).dump(pretty ? 2 : -1);
}

std::pair<int, std::string> MetricsServer::health() const {
  if (draining_.load()) return {503, "draining\n"};
  const uint64_t now = monotonic_ns();
  const auto stuck_ns = static_cast<uint64_t>(config_.stuck_after.count()) * 1'000'000u;
  std::string stuck;
  for (const ReactorHandle& r : reactors_) {
    const uint64_t last = r.metrics->loop.last_turn_monotonic_ns.get();
    if (now > last && now - last > stuck_ns)
      stuck += "reactor " + r.label + " stuck: last turn " +
               std::to_string(double(now - last) / 1e9) + " s ago\n";
  }
  if (!stuck.empty()) return {503, stuck};
  if (const std::string why = store_degraded(now); !why.empty())
    return {200, "degraded: session store (" + why + ")\n"};
  return {200, "ok\n"};
}

// Sessions are node-local while the store is down, and were for a while
// after a fallback: the node serves, but a crash of it would cost them.
std::string MetricsServer::store_degraded(uint64_t now_ns) const {
  if (!config_.session_store) return {};
  uint64_t fallbacks = 0;
  std::string down;
  for (const ReactorHandle& r : reactors_) {
    fallbacks += r.metrics->session_store.fallbacks_total.get();
    if (r.metrics->session_store.connected.get() == 0) down += (down.empty() ? "" : ", ") + r.label;
  }
  if (!down.empty()) return "unreachable from reactor " + down;
  std::lock_guard lock(fallbacks_mutex_);
  if (fallbacks != fallbacks_seen_) {
    fallbacks_seen_ = fallbacks;
    fallback_seen_ns_ = now_ns;
  }
  const auto recent_ns =
      static_cast<uint64_t>(std::chrono::nanoseconds(config_.degraded_after_fallback).count());
  if (fallback_seen_ns_ != 0 && now_ns - fallback_seen_ns_ < recent_ns)
    return "sessions fell back to node-local";
  return {};
}

std::optional<std::string> MetricsServer::connections_json(size_t limit,
                                                           const std::string& sort) const {
  struct Gather {
    std::mutex mutex;
    std::condition_variable done;
    size_t remaining = 0;
    std::vector<ConnectionInfo> rows;
  };
  // Shared: a reactor that answers after the deadline still has somewhere to write.
  auto gather = std::make_shared<Gather>();
  gather->remaining = reactors_.size();
  for (const ReactorHandle& r : reactors_)
    r.list_connections([gather](std::vector<ConnectionInfo> rows) {
      std::lock_guard lock(gather->mutex);
      gather->rows.insert(gather->rows.end(), std::make_move_iterator(rows.begin()),
                          std::make_move_iterator(rows.end()));
      --gather->remaining;
      gather->done.notify_all();
    });
  std::unique_lock lock(gather->mutex);
  if (!gather->done.wait_for(lock, config_.listing_deadline,
                             [&] { return gather->remaining == 0; }))
    return std::nullopt;
  std::vector<ConnectionInfo> rows = std::move(gather->rows);
  lock.unlock();
  sort_rows(rows, sort);
  // Row by row, the same bytes as one json document's dump(): no tree of
  // 10,000 objects is built at once.
  const size_t shown = std::min(limit, rows.size());
  std::string out = R"({"connections":[)";
  out.reserve(out.size() + shown * 200);
  for (size_t i = 0; i < shown; ++i) {
    if (i > 0) out += ',';
    out += row_json(rows[i]).dump();
  }
  out += R"(],"sort":)" + nlohmann::json(sort).dump() + R"(,"total":)" +
         std::to_string(rows.size()) + "}";
  return out;
}

}  // namespace flux
