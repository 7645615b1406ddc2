#pragma once
// ReactorGroup: N reactors, one thread each (--reactors N, or auto = the
// number of online CPUs), as Netty's worker groups and nginx's workers.
//
// Every reactor listens on the same port with SO_REUSEPORT, so the kernel
// spreads new connections over them (by a hash of the 4-tuple: even for
// many clients, with no acceptor thread and no hand-off). Nothing else is
// shared: each has its own event_base, pools, timers and metrics block.
// Reactors meet only where a session must move (a resume landing on
// another reactor than its session's), by message passing through post(),
// and in the SessionDirectory that says where each session lives.
//
// The group knows nothing of the metrics thread: main hands each reactor's
// metrics and connection listing to the MetricsServer (gateway/main.cc).
//
// Thread contract: start(), stop() and join() from the thread that owns the
// group (main); reactor(i) from any thread once started.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gateway/options.h"
#include "gateway/reactor_mesh.h"

namespace flux {

class Reactor;

class ReactorGroup {
 public:
  explicit ReactorGroup(const Options& options);
  ~ReactorGroup();
  ReactorGroup(const ReactorGroup&) = delete;
  ReactorGroup& operator=(const ReactorGroup&) = delete;

  // Builds the reactors and binds their listeners (the first one binds
  // --port, possibly 0; the others join the port it got). No thread yet.
  bool listen(std::string& error);
  uint16_t port() const noexcept { return port_; }
  // One thread per reactor, each running its loop.
  void start();
  // Any thread: every reactor begins its graceful shutdown.
  void request_shutdown() noexcept;
  // Waits until every reactor has drained and stopped.
  void join();

  size_t size() const noexcept { return reactors_.size(); }
  Reactor& reactor(size_t index) const noexcept { return *reactors_[index]; }

  // --reactors 0 means auto: the online CPUs (at least 1).
  static unsigned resolve_count(unsigned requested);

 private:
  Options options_;
  ReactorMesh mesh_;
  std::vector<std::unique_ptr<Reactor>> reactors_;  // outlive every thread
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
};

}  // namespace flux
