#include "metrics/metrics_server.h"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <sys/time.h>

#include <algorithm>
#include <charconv>

#include "dashboard/embedded_files.h"
#include "gateway/loop_clock.h"
#include "metrics/http_task_queue.h"
#include "metrics/process_stats.h"
#include "metrics/prometheus_collector.h"
#include "metrics/stats_json.h"

namespace flux {
namespace {

constexpr size_t kMaxRequestBody = 1024;  // read-only: no request needs a body
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
    std::stable_sort(rows.begin(), rows.end(),
                     [field](const ConnectionInfo& a, const ConnectionInfo& b) { return field(a) > field(b); });
  };
  if (key == "pending") by([](const ConnectionInfo& c) { return c.bytes_pending; });
  else if (key == "age") by([](const ConnectionInfo& c) { return c.age_seconds; });
  else if (key == "bytes_in") by([](const ConnectionInfo& c) { return c.bytes_in; });
  else if (key == "bytes_out") by([](const ConnectionInfo& c) { return c.bytes_out; });
  else return false;
  return true;
}

}  // namespace

MetricsServer::MetricsServer(MetricsServerConfig config, std::vector<ReactorHandle> reactors)
    : config_(std::move(config)),
      reactors_(std::move(reactors)),
      http_(std::make_unique<httplib::Server>()),
      started_ns_(monotonic_ns()) {}

MetricsServer::~MetricsServer() { stop(); }

bool MetricsServer::start(std::string& error) {
  install_routes();
  if (config_.port == 0) {
    int port = http_->bind_to_any_port(config_.bind);
    if (port > 0) port_ = static_cast<uint16_t>(port);
  } else if (http_->bind_to_port(config_.bind, config_.port)) {
    port_ = config_.port;
  }
  if (port_ == 0) {
    error = "cannot listen on " + config_.bind + ":" + std::to_string(config_.port) +
            " for metrics (port in use?)";
    return false;
  }
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  // cpp-httplib's stop() is a no-op until the listen loop has begun: a
  // SIGTERM right after start would otherwise leave stop() joining forever.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!http_->is_running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!http_->is_running()) {
    error = "the metrics HTTP server did not start";
    http_->stop();
    return false;
  }
  sampler_thread_ = std::thread([this] { sample_loop(); });
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
  if (http_thread_.joinable()) http_thread_.join();
  if (sampler_thread_.joinable()) sampler_thread_.join();
}

void MetricsServer::install_routes() {
  httplib::Server& http = *http_;
  const auto threads = static_cast<size_t>(config_.max_connection_threads);
  // httplib's API takes ownership of a raw pointer here.
  http.new_task_queue = [threads] { return new HttpTaskQueue(threads); };
  http.set_payload_max_length(kMaxRequestBody);
  // A silent or slow client holds its thread at most this long.
  http.set_read_timeout(2, 0);
  http.set_write_timeout(2, 0);
  http.set_keep_alive_timeout(2);
  // Read-only: anything but GET/HEAD is refused before its body is read (a
  // client announcing a huge body must not hold a thread while it dribbles).
  http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "GET" || req.method == "HEAD") return httplib::Server::HandlerResponse::Unhandled;
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_header("Connection", "close");
    res.set_content("the metrics port is read-only\n", "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });

  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/stats", [this](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(stats_json(req.has_param("pretty") && req.get_param_value("pretty") != "0"),
                    "application/json");
  });
  http.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    auto [status, body] = health();
    res.status = status;
    res.set_content(body, "text/plain; charset=utf-8");
  });
  http.Get("/connections", [this](const httplib::Request& req, httplib::Response& res) {
    size_t limit = kDefaultListing;
    if (req.has_param("limit")) {
      const std::string text = req.get_param_value("limit");
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
      if (ec != std::errc{} || end != text.data() + text.size()) {
        res.status = 400;
        return res.set_content("limit: expected a number\n", "text/plain");
      }
      limit = std::min(limit, kMaxListing);
    }
    const std::string sort = req.has_param("sort") ? req.get_param_value("sort") : "pending";
    if (std::vector<ConnectionInfo> probe; !sort_rows(probe, sort)) {
      res.status = 400;
      return res.set_content("sort: one of pending, age, bytes_in, bytes_out\n", "text/plain");
    }
    auto body = connections_json(limit, sort);
    if (!body) {
      res.status = 503;
      return res.set_content("a reactor did not answer in time\n", "text/plain");
    }
    res.set_header("Cache-Control", "no-store");
    res.set_content(*body, "application/json");
  });
  for (const EmbeddedFile& file : dashboard_files()) {
    http.Get(std::string(file.path), [&file](const httplib::Request&, httplib::Response& res) {
      res.set_content(file.body.data(), file.body.size(), std::string(file.content_type).c_str());
    });
  }
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
  ScrapeInput input{config_.version, {}, snapshots(), process_stats()};
  for (const ReactorHandle& r : reactors_) input.labels.push_back(r.label);
  return serialize_metrics(build_metric_families(input));
}

std::string MetricsServer::stats_json(bool pretty) const {
  StatsInput in;
  in.version = config_.version;
  in.now_monotonic_ns = monotonic_ns();
  in.uptime_seconds = double(in.now_monotonic_ns - started_ns_) / 1e9;
  in.now_unix_seconds = unix_now();
  in.block_size_bytes = config_.block_size_bytes;
  for (const ReactorHandle& r : reactors_) in.labels.push_back(r.label);
  in.reactors = snapshots();
  in.process = process_stats();
  in.last_1s = history_.window(1);
  in.last_10s = history_.window(10);
  return build_stats_json(in).dump(pretty ? 2 : -1);
}

std::pair<int, std::string> MetricsServer::health() const {
  const uint64_t now = monotonic_ns();
  const auto stuck_ns = static_cast<uint64_t>(config_.stuck_after.count()) * 1'000'000u;
  std::string stuck;
  for (const ReactorHandle& r : reactors_) {
    const uint64_t last = r.metrics->loop.last_turn_monotonic_ns.get();
    if (now > last && now - last > stuck_ns)
      stuck += "reactor " + r.label + " stuck: last turn " +
               std::to_string(double(now - last) / 1e9) + " s ago\n";
  }
  if (stuck.empty()) return {200, "ok\n"};
  return {503, stuck};
}

std::optional<std::string> MetricsServer::connections_json(size_t limit, const std::string& sort) const {
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
  if (!gather->done.wait_for(lock, config_.listing_deadline, [&] { return gather->remaining == 0; }))
    return std::nullopt;
  std::vector<ConnectionInfo> rows = std::move(gather->rows);
  lock.unlock();
  sort_rows(rows, sort);
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < rows.size() && i < limit; ++i) list.push_back(row_json(rows[i]));
  return nlohmann::json{{"total", rows.size()}, {"sort", sort}, {"connections", std::move(list)}}.dump();
}

}  // namespace flux
