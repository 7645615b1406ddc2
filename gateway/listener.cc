#include "gateway/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "gateway/log.h"

namespace flux {
namespace {

bool make_address(const std::string& text, uint16_t port, sockaddr_storage& out, socklen_t& len) {
  std::memset(&out, 0, sizeof out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

uint16_t bound_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

bool is_exhaustion(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

}  // namespace

Listener::Listener(event_base* base, LoopClock& clock, ConnectionMetrics& metrics,
                   AcceptHandler on_accept)
    : base_(base), clock_(clock), metrics_(metrics), on_accept_(std::move(on_accept)) {}

bool Listener::open(const std::string& address, uint16_t port, bool reuse_port,
                    std::string& error) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!make_address(address, port, addr, len)) {
    error = "not a numeric address: " + address;
    return false;
  }
  Fd fd(::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int one = 1;
  if (!fd || setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (reuse_port && setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(fd.get(), SOMAXCONN) != 0) {
    error = "cannot listen on " + address + ":" + std::to_string(port) + ": " + strerror(errno);
    return false;
  }
  fd_ = std::move(fd);
  port_ = bound_port(fd_.get());
  accept_event_.reset(event_new(base_, fd_.get(), EV_READ | EV_PERSIST, on_acceptable_cb, this));
  resume_timer_.reset(evtimer_new(base_, on_resume_cb, this));
  event_add(accept_event_.get(), nullptr);
  return true;
}

void Listener::close() noexcept {
  accept_event_.reset();
  resume_timer_.reset();
  fd_.reset();
}

void Listener::on_acceptable_cb(evutil_socket_t, short, void* self) {
  auto* listener = static_cast<Listener*>(self);
  listener->clock_.on_callback(Activity::kAccept);
  listener->on_acceptable();
}
void Listener::on_resume_cb(evutil_socket_t, short, void* self) {
  auto* listener = static_cast<Listener*>(self);
  listener->clock_.on_callback(Activity::kAccept);
  listener->resume();
}

void Listener::on_acceptable() {
  for (int i = 0; i < kAcceptsPerWakeup && fd_; ++i) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int client = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client >= 0) {
      metrics_.accepted_total.add();
      on_accept_(Fd(client), peer);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (is_exhaustion(errno)) return pause_for_exhaustion(errno);
    // ECONNABORTED, EINTR, EPROTO...: that one connection is gone; go on.
  }
}

void Listener::pause_for_exhaustion(int error) {
  metrics_.accept_errors_total.add();
  metrics_.accept_pauses_total.add();
  if (!paused_)
    log_event(LogLevel::kWarn, "accept-paused",
              {{"error", std::string_view(strerror(error))},
               {"pause_seconds", double(kExhaustionPause.count()) / 1000}},
              "accept: %s; pausing accepts for %lld ms until descriptors free up", strerror(error),
              static_cast<long long>(kExhaustionPause.count()));
  paused_ = true;
  event_del(accept_event_.get());
  timeval pause{0, static_cast<suseconds_t>(kExhaustionPause.count() * 1000)};
  evtimer_add(resume_timer_.get(), &pause);
}

// Tries again; if descriptors are still short, the next accept pauses anew
// (and is counted), but the "recovered" line is logged only once it works.
void Listener::resume() {
  if (!fd_) return;
  event_add(accept_event_.get(), nullptr);
  const uint64_t errors_before = metrics_.accept_errors_total.get();
  on_acceptable();
  if (paused_ && metrics_.accept_errors_total.get() == errors_before) {
    paused_ = false;
    log_event(LogLevel::kInfo, "accept-resumed", {},
              "accept: descriptors available again; accepting resumed");
  }
}

}  // namespace flux
