#pragma once
// MetricsServer: the metrics thread. It serves, read-only, over HTTP/1.1
// (HttpFront: GET and HEAD only) on --bind:--metrics-port:
//
//   GET /metrics      Prometheus text format 0.0.4
//   GET /stats        JSON (docs/stats.md); ?pretty=1 indents
//   GET /connections  ?limit=N (at most 10,000 rows; "total" counts them
//                     all)&sort=pending|age|bytes_in|bytes_out
//   GET /healthz      200 while every reactor turned its loop in the last 2 s
//   GET /             the live dashboard (and its scripts and styles)
//
// HttpFront holds the sockets on one IO thread with a whole-request
// deadline, and never reads a request body above 1 KiB (see http_front.h).
// /healthz and the dashboard files are answered on that thread (so a probe
// is answered whatever else is going on); /metrics and /stats on a small
// pool of handler threads; /connections on that pool too, one listing at a
// time (its reactors build the rows on their own threads: a flood of
// listings must not stall them), the others waiting up to listing_deadline
// and then answered 503 with Retry-After.
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

namespace flux {

class HttpFront;
struct HttpRequest;
struct HttpResponse;

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
  uint16_t node_id = 0;  // --node-id: the build-info series and /stats "node"
  // --session-store redis://: /healthz says "degraded: session store" (200,
  // the balancer keeps the node) while a reactor's store is down, and for
  // degraded_after_fallback after a session fell back to node-local.
  bool session_store = false;
  std::chrono::milliseconds degraded_after_fallback{10'000};
  uint64_t block_size_bytes = 0;
  std::chrono::milliseconds sample_interval{1000};
  std::chrono::milliseconds stuck_after{2000};       // /healthz
  std::chrono::milliseconds listing_deadline{1000};  // /connections
  // The HTTP front (http_front.h): sockets held at once (a new one evicts
  // the slowest when full), the whole-request deadline, handler threads.
  size_t max_http_connections = 256;
  std::chrono::milliseconds request_deadline{2000};
  size_t handler_threads = 2;
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
  // status 200 or 503, and a body naming any stuck reactor, or "draining".
  std::pair<int, std::string> health() const;
  // Any thread: from now on /healthz answers 503 "draining", so a balancer
  // sends this node no new connections while it shuts down.
  void begin_draining() noexcept { draining_.store(true); }
  // nullopt if a reactor did not answer within the deadline.
  std::optional<std::string> connections_json(size_t limit, const std::string& sort) const;

 private:
  void install_routes();
  HttpResponse connections_response(const HttpRequest& req) const;
  void sample_loop();
  std::vector<ReactorSnapshot> snapshots() const;
  ProcessStats process_stats() const;

  MetricsServerConfig config_;
  std::vector<ReactorHandle> reactors_;
  std::unique_ptr<HttpFront> http_;
  std::thread sampler_thread_;
  std::mutex sampler_mutex_;
  std::condition_variable sampler_wake_;
  bool stopping_ = false;
  StatsHistory history_;
  uint16_t port_ = 0;
  std::string store_degraded(uint64_t now_ns) const;
  std::atomic<bool> draining_{false};
  // /healthz: the fallbacks seen last, and when their count last grew.
  mutable std::mutex fallbacks_mutex_;
  mutable uint64_t fallbacks_seen_ = 0;
  mutable uint64_t fallback_seen_ns_ = 0;
  uint64_t started_ns_ = 0;
};

}  // namespace flux
