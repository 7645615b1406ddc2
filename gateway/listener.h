#pragma once
// Listener: the client-facing listening socket and its accept loop.
//
// Each wakeup accepts up to kAcceptsPerWakeup sockets with accept4
// (non-blocking, close-on-exec), so a connection storm cannot monopolise
// one loop iteration. When the process runs out of descriptors (EMFILE,
// ENFILE) or the kernel of buffers (ENOBUFS, ENOMEM), the pending connection
// stays in the backlog and level-triggered epoll would report it again at
// once: a busy loop. Instead accepting pauses for kExhaustionPause and
// resumes by timer; each error and each pause is counted.
//
// Thread contract: loop thread only.

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "common/fd.h"
#include "gateway/libevent_ptr.h"
#include "gateway/loop_clock.h"
#include "metrics/reactor_metrics.h"

namespace flux {

class Listener {
 public:
  using AcceptHandler = std::function<void(Fd, const sockaddr_storage&)>;
  static constexpr int kAcceptsPerWakeup = 64;
  static constexpr std::chrono::milliseconds kExhaustionPause{100};

  Listener(event_base* base, LoopClock& clock, ConnectionMetrics& metrics, AcceptHandler on_accept);

  // Binds and listens; on failure returns false and says why in `error`.
  // reuse_port: SO_REUSEPORT, so that each reactor of a group listens on
  // the same port and the kernel spreads connections between them.
  bool open(const std::string& address, uint16_t port, bool reuse_port, std::string& error);
  // The bound port (the kernel's pick when asked for port 0).
  uint16_t port() const noexcept { return port_; }
  // Stops accepting for good and closes the socket.
  void close() noexcept;

 private:
  static void on_acceptable_cb(evutil_socket_t, short, void* self);
  static void on_resume_cb(evutil_socket_t, short, void* self);
  void on_acceptable();
  void pause_for_exhaustion(int error);
  void resume();

  event_base* base_;
  LoopClock& clock_;
  ConnectionMetrics& metrics_;
  AcceptHandler on_accept_;
  Fd fd_;
  EventPtr accept_event_;
  EventPtr resume_timer_;
  uint16_t port_ = 0;
  bool paused_ = false;
};

}  // namespace flux
