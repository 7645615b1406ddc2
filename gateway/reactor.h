#pragma once
// Reactor: one event loop (libevent event_base over epoll) on one thread,
// owning every connection, buffer and timer it serves.
//
//   run():  loop { event_base_loop(EVLOOP_ONCE); reap closed connections }
//
// Closed connections are destroyed between loop iterations, never inside
// their own callbacks. Shutdown (a signal, or request_shutdown from any
// thread) stops accepting, tells every connection server-shutdown, and
// run() returns once the last one has closed (each bounded by --linger).
//
// Every 100 ms a tick measures loop lag (how late it fires), samples the
// thread's context switches (getrusage RUSAGE_THREAD), stamps the
// "last turn" that /healthz checks, and with a session store checks its
// deadlines and renews the leases of idle sessions.
//
// In a group of reactors (ReactorGroup), each has its own listening socket
// on the shared port (SO_REUSEPORT) and its own everything else; they meet
// only in their ReactorMesh and through post(). A FLUX_RESUME for a session
// another reactor owns hands the connection to that reactor
// (connection_handoff.h): sessions never move.
//
// Composed of one part per concern, each in its own unit:
//   Listener            the listening socket and its accept loop
//   Admission           --max-connections, server-full refusals
//   ConnectionRegistry  the connections, reaped between iterations
//   TaskQueue           post(): the way in from other threads
//   HandoffReceiver     connections handed over by other reactors
//   connection_rows()   the /connections rows
// The Reactor itself owns the loop, the pools, the timers, the sessions,
// the tick and the shutdown, and wires the parts together.
//
// Thread contract: construct and listen() on one thread before run();
// run() and everything else on the reactor thread; request_shutdown(),
// post() and metrics() from any thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gateway/admission.h"
#include "gateway/buffer_pool.h"
#include "gateway/connection_registry.h"
#include "gateway/handoff_receiver.h"
#include "gateway/libevent_ptr.h"
#include "gateway/listener.h"
#include "gateway/loop_clock.h"
#include "gateway/options.h"
#include "gateway/out_queue.h"
#include "gateway/reactor_context.h"
#include "gateway/reactor_mesh.h"
#include "gateway/session_id.h"
#include "gateway/session_store.h"
#include "gateway/session_table.h"
#include "gateway/task_queue.h"
#include "metrics/connection_info.h"
#include "metrics/reactor_metrics.h"

namespace flux {

class Reactor final : public ConnectionRouter {
 public:
  // A reactor on its own (tests, harnesses): a mesh of one.
  explicit Reactor(const Options& options, std::string label = "0");
  // Member `index` of `mesh` (which the caller fills with every member).
  Reactor(const Options& options, unsigned index, ReactorMesh& mesh);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Binds the client port (`port` overrides --port: the group's members
  // join the port its first member bound). False, with the reason, on failure.
  bool listen(std::string& error);
  bool listen(uint16_t port, bool reuse_port, std::string& error);
  uint16_t port() const noexcept { return listener_.port(); }

  // Runs until shutdown has drained every connection.
  void run();
  // One loop iteration (blocking until something happens, or not), then the
  // deferred frees. For harnesses that drive the loop themselves (fuzzing).
  void run_once(bool block);
  // Serves an already-connected socket as if it had just been accepted
  // (harnesses and tests: a socketpair end). Reactor thread only.
  void serve_connected(Fd fd);

  // Any thread: begins the graceful shutdown on the reactor thread.
  void request_shutdown() noexcept;

  // Any thread: runs `task` on the reactor thread at its next turn. The
  // only cross-thread entry besides shutdown (a mutex-guarded queue and one
  // libevent wake-up); never used on the data path.
  void post(std::function<void()> task) { tasks_.post(std::move(task)); }

  // Reactor thread only: a copy of every open connection's figures.
  std::vector<ConnectionInfo> list_connections() const;

  const ReactorMetrics& metrics() const noexcept { return metrics_; }
  const std::string& label() const noexcept { return label_; }
  size_t connection_count() const noexcept { return connections_.size(); }

  // A resume of a session `owner` holds: the connection goes there by post().
  void hand_off(unsigned owner, ConnectionHandoff handoff) override;
  // Any thread: a connection another member hands to this one.
  void deliver_handoff(ConnectionHandoff handoff) { handoffs_.deliver(std::move(handoff)); }
  unsigned index() const noexcept { return index_; }

 private:
  static constexpr size_t kPreallocatedBlocks = 64;
  // Replay blocks: small, so that a session of small frames costs little.
  static constexpr size_t kReplayBlockSize = 4096;
  static constexpr size_t kDiscardScratchBytes = 64 * 1024;

  static constexpr Millis kTickInterval{100};

  // Every reactor is a member of a mesh: its group's, or one it owns alone
  // (`own_mesh`, empty in a group).
  Reactor(const Options& options, std::string label, unsigned index,
          std::unique_ptr<ReactorMesh>&& own_mesh);
  Reactor(const Options& options, std::string label, unsigned index, ReactorMesh& mesh,
          std::unique_ptr<ReactorMesh>&& own_mesh);

  static void on_shutdown_cb(evutil_socket_t, short, void* self);
  static void on_tick_cb(evutil_socket_t, short, void* self);
  void on_tick();
  void arm_tick();
  void on_accept(Fd fd, const sockaddr_storage& peer);
  void begin_shutdown();
  void relieve_output_budget() noexcept;
  // On the owner: a connection handed over by another member.
  void receive_handoff(ConnectionHandoff handoff);
  bool drained() const noexcept;
  std::unique_ptr<SessionStore> make_store();

  Options options_;
  std::string label_;
  unsigned index_ = 0;
  std::unique_ptr<ReactorMesh> own_mesh_;  // a reactor on its own: its mesh of one
  ReactorMesh& mesh_;
  ReactorMetrics metrics_;
  EventBasePtr base_;
  LoopClock loop_clock_;
  BufferPool blocks_;
  FrameNodePool frame_nodes_;
  BufferPool replay_blocks_;
  SessionIdGenerator session_ids_;
  CommonTimeout resume_window_;
  std::unique_ptr<SessionStore> store_;  // --session-store redis://; null for memory
  SessionTable sessions_;
  std::unique_ptr<std::byte[]> discard_scratch_;
  OutputBudget output_budget_;
  ReactorContext context_;
  Admission admission_;
  // After everything its connections use: they are destroyed first.
  ConnectionRegistry connections_;
  Listener listener_;
  TaskQueue tasks_;
  HandoffReceiver handoffs_;

  EventPtr shutdown_event_;  // made active from any thread
  EventPtr tick_event_;
  uint64_t tick_armed_ns_ = 0;
  bool shutting_down_ = false;
};

}  // namespace flux
