#include "gateway/reactor.h"

#include <event2/thread.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "gateway/connection_rows.h"
#include "gateway/log.h"
#include "gateway/redis_session_store.h"

namespace flux {
namespace {

// event_active() from another thread needs libevent's locking, which must
// be switched on before the first event_base exists.
void enable_libevent_threads() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (evthread_use_pthreads() != 0) {
      fprintf(stderr, "flux: evthread_use_pthreads failed\n");
      std::abort();
    }
  });
}

EventBasePtr make_event_base() {
  enable_libevent_threads();
  EventConfigPtr config(event_config_new());
  // Epoll is what the whole design assumes (level-triggered, O(1) waits).
  event_config_avoid_method(config.get(), "select");
  event_config_avoid_method(config.get(), "poll");
  EventBasePtr base(event_base_new_with_config(config.get()));
  if (!base) {
    fprintf(stderr, "flux: cannot create an epoll event_base\n");
    std::abort();
  }
  return base;
}

}  // namespace

Reactor::Reactor(const Options& options, std::string label)
    : Reactor(options, std::move(label), 0, std::make_unique<ReactorMesh>()) {}

Reactor::Reactor(const Options& options, unsigned index, ReactorMesh& mesh)
    : Reactor(options, std::to_string(index), index, mesh, nullptr) {}

Reactor::Reactor(const Options& options, std::string label, unsigned index,
                 std::unique_ptr<ReactorMesh>&& own_mesh)
    : Reactor(options, std::move(label), index, *own_mesh, std::move(own_mesh)) {
  mesh_.members.push_back(this);  // the only member of its own mesh
}

Reactor::Reactor(const Options& options, std::string label, unsigned index, ReactorMesh& mesh,
                 std::unique_ptr<ReactorMesh>&& own_mesh)
    : options_(options),
      label_(std::move(label)),
      index_(index),
      own_mesh_(std::move(own_mesh)),
      mesh_(mesh),
      base_(make_event_base()),
      loop_clock_(metrics_),
      blocks_(BufferPool::block_size_for(options_.max_frame), kPreallocatedBlocks, metrics_.pool),
      frame_nodes_(metrics_.pool),
      replay_blocks_(kReplayBlockSize, 0, metrics_.pool),
      session_ids_(options_.node_id),
      resume_window_(base_.get(), options_.resume_window),
      store_(make_store()),
      sessions_({base_.get(),
                 options_,
                 metrics_.sessions,
                 {replay_blocks_, blocks_},
                 session_ids_,
                 resume_window_,
                 loop_clock_,
                 mesh_.directory,
                 index_,
                 store_.get(),
                 &metrics_.session_store}),
      discard_scratch_(std::make_unique_for_overwrite<std::byte[]>(kDiscardScratchBytes)),
      output_budget_(options_.max_pending_total),
      context_{base_.get(),
               options_,
               metrics_,
               blocks_,
               frame_nodes_,
               sessions_,
               *this,
               loop_clock_,
               label_.c_str(),
               CommonTimeout(base_.get(), options_.handshake_timeout),
               CommonTimeout(base_.get(), options_.idle_timeout),
               CommonTimeout(base_.get(), options_.linger),
               CommonTimeout(base_.get(), options_.write_timeout),
               output_budget_,
               0,
               0,
               CommonTimeout(base_.get(), Millis{1}),
               {discard_scratch_.get(), kDiscardScratchBytes},
               store_.get(),
               {}},
      admission_(mesh_.admitted, options_.max_connections, metrics_,
                 {discard_scratch_.get(), kDiscardScratchBytes}),
      connections_(admission_),
      listener_(base_.get(), loop_clock_, metrics_.connections,
                [this](Fd fd, const sockaddr_storage& peer) { on_accept(std::move(fd), peer); }),
      tasks_(base_.get(), loop_clock_),
      handoffs_(tasks_, [this](ConnectionHandoff handoff) { receive_handoff(std::move(handoff)); }),
      shutdown_event_(event_new(base_.get(), -1, 0, on_shutdown_cb, this)),
      tick_event_(evtimer_new(base_.get(), on_tick_cb, this)) {
  metrics_.loop.last_turn_monotonic_ns.set(monotonic_ns());
  arm_tick();
}

std::unique_ptr<SessionStore> Reactor::make_store() {
  if (!options_.session_store.redis) return nullptr;
  SessionStore::Deps deps{base_.get(),
                          options_,
                          metrics_.session_store,
                          metrics_.store_round_trip,
                          loop_clock_,
                          index_,
                          [this](std::string_view id, std::string_view token) {
                            sessions_.release_lost(id, token);
                            sessions_.reap();
                          }};
  return mesh_.store ? mesh_.store(std::move(deps)) : make_redis_store(std::move(deps));
}

Reactor::~Reactor() {
  // Connections hold events of base_: destroy them before the base.
  connections_.clear();
}

bool Reactor::listen(std::string& error) {
  return listen(options_.port, false, error);
}

bool Reactor::listen(uint16_t port, bool reuse_port, std::string& error) {
  return listener_.open(options_.bind, port, reuse_port, error);
}

void Reactor::run() {
  while (!drained()) run_once(true);
}

// Done when shut down and empty, with no connection on its way here, and
// no member left that could still hand one over.
bool Reactor::drained() const noexcept {
  return shutting_down_ && connections_.empty() && !handoffs_.in_flight() && mesh_.all_draining();
}

// On the reactor that read the FLUX_RESUME: the connection goes to the
// session's owner (counted there at once, see HandoffReceiver).
void Reactor::hand_off(unsigned owner, ConnectionHandoff handoff) {
  mesh_.members.at(owner)->deliver_handoff(std::move(handoff));
}

// On the owner: the connection carries on here, as if accepted here, and
// its FLUX_RESUME is answered as any local one. Once this reactor is
// shutting down it answers no resume (as a single reactor would not: its
// connections are all CLOSING by then): the client is told server-shutdown.
void Reactor::receive_handoff(ConnectionHandoff handoff) {
  Connection& connection = connections_.add(context_, std::move(handoff.fd), handoff.peer);
  if (shutting_down_) return connection.start_handed_over_into_shutdown(std::move(handoff));
  connection.start_handed_over(std::move(handoff));
}

void Reactor::run_once(bool block) {
  loop_clock_.before_poll();
  context_.read_this_turn = 0;
  context_.slow_closes_this_turn = 0;
  event_base_loop(base_.get(), block ? EVLOOP_ONCE : EVLOOP_NONBLOCK);
  if (store_) store_->send_turn_batch();  // the turn's frames: one command to the store
  connections_.reap_closed();
  relieve_output_budget();
  sessions_.reap();
}

void Reactor::serve_connected(Fd fd) {
  sockaddr_storage peer{};
  peer.ss_family = AF_UNIX;
  metrics_.connections.accepted_total.add();
  on_accept(std::move(fd), peer);
}

void Reactor::request_shutdown() noexcept {
  event_active(shutdown_event_.get(), 0, 0);
}

void Reactor::on_shutdown_cb(evutil_socket_t, short, void* self) {
  auto* reactor = static_cast<Reactor*>(self);
  reactor->loop_clock_.on_callback();
  reactor->begin_shutdown();
}

void Reactor::arm_tick() {
  tick_armed_ns_ = monotonic_ns();
  timeval interval{0, static_cast<suseconds_t>(kTickInterval.count() * 1000)};
  evtimer_add(tick_event_.get(), &interval);
}

void Reactor::on_tick_cb(evutil_socket_t, short, void* self) {
  auto* reactor = static_cast<Reactor*>(self);
  reactor->loop_clock_.on_callback();
  reactor->on_tick();
}

void Reactor::on_tick() {
  const uint64_t now = monotonic_ns();
  const uint64_t due = tick_armed_ns_ + static_cast<uint64_t>(kTickInterval.count()) * 1'000'000u;
  metrics_.loop_lag.record(now > due ? now - due : 0);
  metrics_.loop.last_turn_monotonic_ns.set(now);
  // Give back pool memory that recent use did not need (gradually, and
  // never on the data path: once per tick).
  blocks_.decay(now);
  replay_blocks_.decay(now);
  frame_nodes_.decay(now);
  if (store_) {
    store_->on_tick(now);
    sessions_.renew_leases(now);
  }
  rusage usage{};
  if (kMetricsEnabled && getrusage(RUSAGE_THREAD, &usage) == 0) {
    metrics_.loop.voluntary_switches_total.set(static_cast<uint64_t>(usage.ru_nvcsw));
    metrics_.loop.involuntary_switches_total.set(static_cast<uint64_t>(usage.ru_nivcsw));
  }
  arm_tick();
}

std::vector<ConnectionInfo> Reactor::list_connections() const {
  return connection_rows(connections_, label_);
}

void Reactor::begin_shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  mesh_.draining.fetch_add(1);
  log_event(LogLevel::kInfo, "shutdown-begin",
            {{"reactor", std::string_view(label_)},
             {"connections", uint64_t{connections_.size()}},
             {"linger_seconds", double(options_.linger.count()) / 1000}},
            "shutdown: closing the listener, draining %zu connection(s) (linger %lld ms)",
            connections_.size(), static_cast<long long>(options_.linger.count()));
  listener_.close();
  connections_.for_each([](Connection& connection) { connection.shut_down_for_server_exit(); });
}

void Reactor::on_accept(Fd fd, const sockaddr_storage& peer) {
  if (!admission_.admit(fd)) return;  // refused: told server-full, the socket closes here
  connections_.add(context_, std::move(fd), peer).start();
}

// Once per loop turn, O(1) unless connections were paused by the budget and
// it has just been relieved (then one pass over the connections).
void Reactor::relieve_output_budget() noexcept {
  if (output_budget_.paused() == 0 || !output_budget_.relieved()) return;
  connections_.for_each([](Connection& connection) {
    if (connection.paused_by_output_budget()) connection.on_output_budget_relieved();
  });
}

}  // namespace flux
