#include "metrics/http_front.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <exception>

#include "metrics/thread_names.h"

namespace flux {
namespace {

constexpr size_t kReadCap = 16 * 1024;   // > one whole request (head + body)
constexpr size_t kMaxDrain = 64 * 1024;  // dropped while lingering, then closed
constexpr size_t kAcceptsPerWakeup = 256;
constexpr std::chrono::milliseconds kAcceptPause{100};  // after EMFILE and the like
constexpr std::chrono::milliseconds kMaxPollWait{1000};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

enum class ConnState { kReading, kWaitingTurn, kHandling, kWriting, kLingering, kClosed };

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

}  // namespace

struct HttpFront::Conn {
  uint64_t id = 0;
  Fd fd;
  ConnState state = ConnState::kReading;
  Clock::time_point deadline;
  std::string in;  // read, not yet consumed; at most kReadCap
  std::string out;
  size_t out_pos = 0;
  bool peer_eof = false;
  bool keep_alive = true;    // of the request being answered
  bool head_only = false;    // HEAD: the response has no body
  bool close_after = false;  // linger and close once `out` is written
  bool continue_sent = false;
  bool holds_turn = false;
  size_t drained = 0;
  const Route* pending_route = nullptr;  // kWaitingTurn
  HttpRequest pending;
};

HttpFront::HttpFront(HttpFrontConfig config) : config_(std::move(config)) {}

HttpFront::~HttpFront() {
  stop();
}

void HttpFront::route(std::string path, Run run, Handler handler) {
  routes_[std::move(path)] = Route{run, std::move(handler)};
}

bool HttpFront::listen(std::string& error) {
  const std::string where = config_.bind + ":" + std::to_string(config_.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(config_.port);
  if (::getaddrinfo(config_.bind.c_str(), service.c_str(), &hints, &found) != 0 || !found) {
    error = "cannot listen on " + where + " for metrics: not a numeric address";
    return false;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, ::freeaddrinfo);
  Fd fd(::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const int one = 1;
  if (fd) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (!fd || ::bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0 ||
      ::listen(fd.get(), config_.listen_backlog) != 0) {
    error = "cannot listen on " + where + " for metrics (port in use?): " + std::strerror(errno);
    return false;
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  wake_fd_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_) {
    error = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  listener_ = std::move(fd);
  return true;
}

void HttpFront::start() {
  workers_ = std::make_unique<HttpTaskQueue>(config_.worker_threads);
  io_thread_ = std::thread([this] {
    name_this_thread("flux-http-io");
    io_loop();
  });
}

void HttpFront::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake();
  if (io_thread_.joinable()) io_thread_.join();
  if (workers_) workers_->shutdown();
}

void HttpFront::wake() {
  if (!wake_fd_) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
}

// ------------------------------------------------------------- the IO loop

void HttpFront::io_loop() {
  std::vector<pollfd> fds;
  std::vector<Conn*> polled;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    Clock::time_point now = Clock::now();
    fds.clear();
    polled.clear();
    fds.push_back({wake_fd_.get(), POLLIN, 0});
    const bool accepting = now >= accept_paused_until_;
    fds.push_back({listener_.get(), static_cast<short>(accepting ? POLLIN : 0), 0});
    for (auto& [id, c] : conns_) {
      short events = 0;
      if (c->state == ConnState::kReading || c->state == ConnState::kLingering) events = POLLIN;
      if (c->state == ConnState::kWriting) events = POLLOUT;
      if (events == 0) continue;
      fds.push_back({c->fd.get(), events, 0});
      polled.push_back(c.get());
    }
    if (::poll(fds.data(), fds.size(), poll_timeout_ms(now)) < 0 && errno != EINTR) break;
    now = Clock::now();
    if (fds[0].revents != 0) {
      uint64_t count = 0;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_.get(), &count, sizeof count);
    }
    take_completions(now);
    for (size_t i = 0; i < polled.size(); ++i) {
      Conn& c = *polled[i];
      const short revents = fds[i + 2].revents;
      if (revents == 0) continue;
      if (c.state == ConnState::kWriting)
        on_writable(c, now);
      else if (c.state == ConnState::kReading || c.state == ConnState::kLingering)
        on_readable(c, now);
    }
    if (fds[1].revents != 0) accept_new(now);
    expire(now);
    sweep();
  }
  conns_.clear();
  waiting_.clear();
}

int HttpFront::poll_timeout_ms(Clock::time_point now) const {
  Clock::time_point wake_at = now + kMaxPollWait;
  if (accept_paused_until_ > now) wake_at = std::min(wake_at, accept_paused_until_);
  for (const auto& [id, c] : conns_)
    if (c->state != ConnState::kHandling && c->state != ConnState::kClosed)
      wake_at = std::min(wake_at, c->deadline);
  if (wake_at <= now) return 0;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wake_at - now).count());
}

// A prompt client's request has usually arrived by the time it is
// accepted, so it is read (and often answered) at once.
void HttpFront::accept_new(Clock::time_point now) {
  for (size_t i = 0; i < kAcceptsPerWakeup; ++i) {
    Fd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (!would_block(errno)) accept_paused_until_ = now + kAcceptPause;  // EMFILE, ENOBUFS...
      return;
    }
    if (live_ >= config_.max_connections && !make_room()) continue;  // fd closes
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto conn = std::make_unique<Conn>();
    conn->id = next_id_++;
    conn->fd = std::move(fd);
    conn->deadline = now + config_.request_deadline;
    Conn& c = *conn;
    conns_.emplace(c.id, std::move(conn));
    ++live_;
    on_readable(c, now);
  }
}

// Closes the connection that is waiting for a request (or lingering) with
// the nearest deadline: the slowest client, or an idle keep-alive one.
bool HttpFront::make_room() {
  Conn* victim = nullptr;
  for (auto& [id, c] : conns_) {
    if (c->state != ConnState::kReading && c->state != ConnState::kLingering) continue;
    if (!victim || c->deadline < victim->deadline) victim = c.get();
  }
  if (!victim) return false;
  close(*victim, Clock::now());
  return true;
}

// ------------------------------------------------------- one connection

void HttpFront::on_readable(Conn& c, Clock::time_point now) {
  if (c.state == ConnState::kLingering) return drain(c, now);
  char buffer[4096];
  while (c.in.size() < kReadCap && !c.peer_eof) {
    const ssize_t n =
        ::recv(c.fd.get(), buffer, std::min(sizeof buffer, kReadCap - c.in.size()), 0);
    if (n > 0) {
      c.in.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      c.peer_eof = true;
    } else if (errno != EINTR) {
      if (!would_block(errno)) return close(c, now);
      break;
    }
  }
  advance(c, now);
}

// Serves the requests complete in `in`, one at a time and in order.
void HttpFront::advance(Conn& c, Clock::time_point now) {
  while (c.state == ConnState::kReading) {
    HttpParse parsed = parse_http_request(c.in);
    if (parsed.kind == HttpParse::Kind::kRefuse)
      return refuse(c, parsed.status, parsed.reason, now);
    if (parsed.kind == HttpParse::Kind::kNeedMore) {
      if (parsed.wants_continue && !c.continue_sent) {
        c.continue_sent = true;  // the body is small and will be taken: invite it
        (void)::send(c.fd.get(), kContinue.data(), kContinue.size(), MSG_NOSIGNAL);
      }
      if (c.peer_eof) close(c, now);  // it will never be complete
      return;
    }
    c.in.erase(0, parsed.consumed);
    c.continue_sent = false;
    dispatch(c, std::move(parsed.request), now);
  }
}

void HttpFront::dispatch(Conn& c, HttpRequest request, Clock::time_point now) {
  c.keep_alive = request.keep_alive;
  c.head_only = request.method == "HEAD";
  const auto found = routes_.find(request.path);
  if (found == routes_.end()) return respond(c, text_response(404, "not found\n"), now);
  const Route& route = found->second;
  switch (route.run) {
    case Run::kIoThread:
      return respond(c, route.handler(request), now);
    case Run::kWorker:
      return run_on_worker(c, route, std::move(request));
    case Run::kOneAtATime:
      c.pending_route = &route;
      c.pending = std::move(request);
      if (!turn_taken_) return start_turn(c, now);
      c.state = ConnState::kWaitingTurn;
      c.deadline = now + config_.turn_wait;
      waiting_.push_back(c.id);
      return;
  }
}

void HttpFront::run_on_worker(Conn& c, const Route& route, HttpRequest request) {
  c.state = ConnState::kHandling;
  workers_->post([this, id = c.id, handler = &route.handler, req = std::move(request)] {
    HttpResponse response;
    try {
      response = (*handler)(req);
    } catch (const std::exception& e) {
      response = text_response(500, std::string("internal error: ") + e.what() + "\n");
    }
    {
      std::lock_guard lock(mutex_);
      completions_.push_back(Completion{id, std::move(response)});
    }
    wake();
  });
}

void HttpFront::start_turn(Conn& c, Clock::time_point) {
  turn_taken_ = true;
  c.holds_turn = true;
  run_on_worker(c, *c.pending_route, std::move(c.pending));
}

// The turn passes to the oldest request still waiting for it.
void HttpFront::end_turn(Conn& c, Clock::time_point now) {
  c.holds_turn = false;
  turn_taken_ = false;
  while (!waiting_.empty()) {
    const auto next = conns_.find(waiting_.front());
    waiting_.pop_front();
    if (next != conns_.end() && next->second->state == ConnState::kWaitingTurn)
      return start_turn(*next->second, now);
  }
}

void HttpFront::respond(Conn& c, HttpResponse response, Clock::time_point now) {
  c.close_after = c.close_after || !c.keep_alive;
  c.out = serialize_response(response, c.head_only, c.close_after, config_.request_deadline);
  c.out_pos = 0;
  c.state = ConnState::kWriting;
  c.deadline = now + config_.write_deadline;
  try_write(c, now);
}

// Answers `status` and closes: whatever else the client sends is not read.
void HttpFront::refuse(Conn& c, int status, const std::string& reason, Clock::time_point now) {
  HttpResponse r = text_response(status, reason + "\n");
  if (status == 405) r.headers.emplace_back("Allow", "GET, HEAD");
  c.close_after = true;
  c.head_only = false;
  respond(c, std::move(r), now);
}

void HttpFront::on_writable(Conn& c, Clock::time_point now) {
  try_write(c, now);
  if (c.state == ConnState::kReading) advance(c, now);
}

void HttpFront::try_write(Conn& c, Clock::time_point now) {
  while (c.out_pos < c.out.size()) {
    const ssize_t n =
        ::send(c.fd.get(), c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_pos += static_cast<size_t>(n);
    } else if (errno != EINTR) {
      if (!would_block(errno)) close(c, now);
      return;  // the rest when the socket is writable
    }
  }
  written(c, now);
}

void HttpFront::written(Conn& c, Clock::time_point now) {
  std::string().swap(c.out);  // a listing can be megabytes: give it back now
  c.out_pos = 0;
  if (c.holds_turn) end_turn(c, now);
  if (!c.close_after) {
    c.state = ConnState::kReading;
    c.deadline = now + config_.request_deadline;
    return;
  }
  // FIN now: the client sees the response and then EOF at once. Its unread
  // input is drained for a moment, so that closing does not reset the
  // connection (and destroy the response) while it is still sending.
  ::shutdown(c.fd.get(), SHUT_WR);
  std::string().swap(c.in);
  c.state = ConnState::kLingering;
  c.deadline = now + config_.linger;
  if (c.peer_eof) return close(c, now);
  drain(c, now);
}

void HttpFront::drain(Conn& c, Clock::time_point now) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::recv(c.fd.get(), buffer, sizeof buffer, 0);
    if (n > 0) {
      c.drained += static_cast<size_t>(n);
      if (c.drained > kMaxDrain) return close(c, now);
    } else if (n == 0 || (errno != EINTR && !would_block(errno))) {
      return close(c, now);
    } else if (errno != EINTR) {
      return;
    }
  }
}

void HttpFront::close(Conn& c, Clock::time_point now) {
  if (c.state == ConnState::kClosed) return;
  c.state = ConnState::kClosed;
  c.fd.reset();
  --live_;
  std::string().swap(c.in);
  std::string().swap(c.out);
  if (c.holds_turn) end_turn(c, now);
}

// --------------------------------------------------- completions, deadlines

void HttpFront::take_completions(Clock::time_point now) {
  std::vector<Completion> done;
  {
    std::lock_guard lock(mutex_);
    done.swap(completions_);
  }
  for (Completion& d : done) {
    const auto found = conns_.find(d.conn_id);
    if (found == conns_.end() || found->second->state != ConnState::kHandling) continue;
    Conn& c = *found->second;
    respond(c, std::move(d.response), now);
    if (c.state == ConnState::kReading) advance(c, now);
  }
}

void HttpFront::expire(Clock::time_point now) {
  for (auto& [id, conn] : conns_) {
    Conn& c = *conn;
    if (c.state == ConnState::kClosed || c.state == ConnState::kHandling || now < c.deadline)
      continue;
    switch (c.state) {
      case ConnState::kReading:
        if (c.in.find_first_not_of("\r\n") == std::string::npos)
          close(c, now);  // nothing asked
        else
          refuse(c, 408, "the request was not complete within the deadline", now);
        break;
      case ConnState::kWaitingTurn: {
        HttpResponse busy = text_response(503, "busy: one such request at a time; retry later\n");
        busy.headers.emplace_back("Retry-After", "1");
        respond(c, std::move(busy), now);
        if (c.state == ConnState::kReading) advance(c, now);
        break;
      }
      default:  // kWriting, kLingering
        close(c, now);
        break;
    }
  }
}

void HttpFront::sweep() {
  std::erase_if(conns_,
                [](const auto& entry) { return entry.second->state == ConnState::kClosed; });
}

}  // namespace flux
