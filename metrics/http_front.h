#pragma once
// HttpFront: the metrics port's HTTP/1.1 server, GET and HEAD only.
//
// Why not cpp-httplib's server (0.11, which this replaces): it gives every
// accepted socket a thread for the socket's whole life and reads with a
// per-read timeout only, so a client sending a byte a second holds a thread
// forever and 256 of them stop /healthz (its listen backlog is 5); it reads
// a request line of any length into memory (a "body" after a refusal is read
// as the next request line: hundreds of MB); it answers `100 Continue`
// before a pre-routing handler can refuse; unknown methods are a 400; and
// none of that is configurable. Its routing is fine, but cannot be reached
// without its connection handling, so this is a small front of our own:
//
//   listener --accept--> Conn (IO thread, poll(), non-blocking sockets)
//      kReading ---------- parse_http_request() on the bytes so far
//        | refused: status + Connection: close, then kLingering
//        | complete GET/HEAD:
//        |   Run::kIoThread   handler runs here (cheap: /healthz, files)
//        |   Run::kWorker     handler runs on HttpTaskQueue (kHandling)
//        |   Run::kOneAtATime one such request at a time, in arrival order;
//        |                    the others wait (kWaitingTurn) up to turn_wait,
//        |                    then get 503 with Retry-After
//      kWriting ---------- the response; then kReading again (keep-alive,
//                          pipelined requests in order) or kLingering
//      kLingering -------- FIN sent; unread input drained and dropped (at
//                          most 64 KiB, `linger`), so the peer gets the
//                          response and EOF rather than a reset
//
// Bounds, every one enforced on the IO thread without reading a body:
//  - one deadline per connection: a whole request (line, headers, body)
//    within request_deadline of the accept or of the previous response,
//    else 408 (or a silent close if nothing came); a response written
//    within write_deadline, else the connection is dropped;
//  - at most kMaxHttpHead bytes of head, kMaxHttpBody of body (see
//    http_request.h); input buffered per connection at most 16 KiB;
//  - at most max_connections sockets. A new connection when full evicts the
//    one whose request or linger deadline is nearest (a slow or idle client),
//    so a prompt client (a /healthz probe) is always admitted and served
//    whatever slow clients hold; the listen backlog is listen_backlog.
//  - a kOneAtATime route's turn lasts until its response is written, so at
//    most one such body (a /connections listing) exists at a time.
//
// Thread contract: route() before start(); listen(), start() and stop()
// from one thread; handlers run on the IO thread or a worker as routed and
// must be safe to run concurrently with each other.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "metrics/http_request.h"
#include "metrics/http_response.h"
#include "metrics/http_task_queue.h"

namespace flux {

struct HttpFrontConfig {
  std::string bind = "127.0.0.1";
  uint16_t port = 0;  // 0 = pick
  size_t max_connections = 256;
  std::chrono::milliseconds request_deadline{2000};
  std::chrono::milliseconds write_deadline{2000};
  std::chrono::milliseconds linger{500};
  std::chrono::milliseconds turn_wait{1000};  // Run::kOneAtATime
  size_t worker_threads = 2;
  int listen_backlog = 1024;
};

class HttpFront {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  enum class Run { kIoThread, kWorker, kOneAtATime };

  explicit HttpFront(HttpFrontConfig config);
  ~HttpFront();
  HttpFront(const HttpFront&) = delete;
  HttpFront& operator=(const HttpFront&) = delete;

  // Serves GET and HEAD of exactly `path` (%-decoded, no query). Before start().
  void route(std::string path, Run run, Handler handler);
  // Binds and listens; false with the reason if it cannot.
  bool listen(std::string& error);
  uint16_t port() const noexcept { return port_; }
  // Starts the IO thread and the workers. After listen().
  void start();
  // Closes every connection and joins every thread. Idempotent.
  void stop();

 private:
  struct Conn;
  struct Route {
    Run run;
    Handler handler;
  };
  struct Completion {
    uint64_t conn_id;
    HttpResponse response;
  };
  using Clock = std::chrono::steady_clock;

  void io_loop();
  int poll_timeout_ms(Clock::time_point now) const;
  void accept_new(Clock::time_point now);
  bool make_room();
  void on_readable(Conn& c, Clock::time_point now);
  void on_writable(Conn& c, Clock::time_point now);
  void advance(Conn& c, Clock::time_point now);
  void dispatch(Conn& c, HttpRequest request, Clock::time_point now);
  void run_on_worker(Conn& c, const Route& route, HttpRequest request);
  void start_turn(Conn& c, Clock::time_point now);
  void end_turn(Conn& c, Clock::time_point now);
  void respond(Conn& c, HttpResponse response, Clock::time_point now);
  void refuse(Conn& c, int status, const std::string& reason, Clock::time_point now);
  void try_write(Conn& c, Clock::time_point now);
  void written(Conn& c, Clock::time_point now);
  void drain(Conn& c, Clock::time_point now);
  void close(Conn& c, Clock::time_point now);
  void take_completions(Clock::time_point now);
  void expire(Clock::time_point now);
  void sweep();
  void wake();

  const HttpFrontConfig config_;
  std::map<std::string, Route, std::less<>> routes_;
  Fd listener_;
  Fd wake_fd_;  // eventfd: workers' completions, stop()
  uint16_t port_ = 0;
  std::thread io_thread_;
  std::unique_ptr<HttpTaskQueue> workers_;

  // IO thread only.
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;
  uint64_t next_id_ = 1;
  bool turn_taken_ = false;       // a kOneAtATime request is being served
  std::deque<uint64_t> waiting_;  // kWaitingTurn connections, oldest first
  size_t live_ = 0;               // connections not closed yet
  Clock::time_point accept_paused_until_{};

  // Shared with the workers and stop().
  std::mutex mutex_;
  std::vector<Completion> completions_;
  bool stopping_ = false;
};

}  // namespace flux
