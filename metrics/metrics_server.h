#pragma once
// MetricsServer: the metrics thread. It serves, read-only, over HTTP
// (cpp-httplib, one thread per connection up to 256) on --bind:--metrics-port:
//
//   GET /metrics      Prometheus text format 0.0.4
//   GET /stats        JSON (docs/stats.md); ?pretty=1 indents
//   GET /connections  ?limit=N&sort=pending|age|bytes_in|bytes_out
//   GET /healthz      200 while every reactor turned its loop in the last 2 s
//   GET /             the live dashboard (and its scripts and styles)
//
// Each HTTP connection has a thread of its own while it lasts (at most 256
// at once; more wait), so idle or slow clients cannot starve a scrape.
// A sampler thread copies the reactors' metrics once a second into a
// StatsHistory, from which /stats computes rates and windows.
//
// Reactors are reached only through ReactorHandle: their atomics are read
// directly; a /connections listing is asked of the reactor itself
// (it builds the copy on its own thread) and awaited with a deadline.
//
// Thread contract: construct, start() and stop() from one thread; the
// handlers run on the server's own threads.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "metrics/connection_info.h"
#include "metrics/reactor_metrics.h"
#include "metrics/stats_history.h"

namespace httplib {
class Server;
}

namespace flux {

struct ReactorHandle {
  std::string label;
  const ReactorMetrics* metrics = nullptr;
  // Any thread: delivers this reactor's connection rows to `done` on the
  // reactor's thread (done must be callable from there).
  std::function<void(std::function<void(std::vector<ConnectionInfo>)> done)> list_connections;
};

struct MetricsServerConfig {
  std::string bind = "127.0.0.1";
  uint16_t port = 9100;  // 0 = pick
  std::string version;
  uint64_t block_size_bytes = 0;
  std::chrono::milliseconds sample_interval{1000};
  std::chrono::milliseconds stuck_after{2000};       // /healthz
  std::chrono::milliseconds listing_deadline{1000};  // /connections
  // Connections served at once, each on its own thread (see HttpTaskQueue).
  int max_connection_threads = 256;
};

class MetricsServer {
 public:
  MetricsServer(MetricsServerConfig config, std::vector<ReactorHandle> reactors);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds and starts serving; false (with the reason) if the port is taken.
  bool start(std::string& error);
  uint16_t port() const noexcept { return port_; }
  void stop();

  // The bodies, exposed for in-process tests.
  std::string metrics_text() const;
  std::string stats_json(bool pretty) const;
  // status 200 or 503, and a body naming any stuck reactor.
  std::pair<int, std::string> health() const;
  // nullopt if a reactor did not answer within the deadline.
  std::optional<std::string> connections_json(size_t limit, const std::string& sort) const;

 private:
  void install_routes();
  void sample_loop();
  std::vector<ReactorSnapshot> snapshots() const;
  ProcessStats process_stats() const;

  MetricsServerConfig config_;
  std::vector<ReactorHandle> reactors_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  std::thread sampler_thread_;
  std::mutex sampler_mutex_;
  std::condition_variable sampler_wake_;
  bool stopping_ = false;
  StatsHistory history_;
  uint16_t port_ = 0;
  uint64_t started_ns_ = 0;
};

}  // namespace flux
