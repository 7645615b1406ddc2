#pragma once
// Worker: one client thread, its own epoll loop, a contiguous share of the
// connections.
//
// Each turn of the loop:
//   1. phase work: open connections (paced), expire slow handshakes, start
//      traffic at RunControl::start_ns, sweep at the end, stop at the hard stop
//   2. epoll_pwait2 (nanosecond timeout: the next due frame or phase edge)
//   3. events: connect completions, reads (verify echoes, refill the window),
//      writes (flush what the kernel refused earlier)
//   4. open loop: send every frame whose scheduled time has come
// Work per turn is bounded (opens, reads and frames per connection), so a
// flood on one connection cannot starve the others' schedules.
//
// One class in four units: worker.cc (the loop, phases, bookkeeping),
// worker_receive.cc (events and echoes), worker_send.cc (frames out, the
// open-loop schedule), worker_churn.cc (--churn's drops and resumes).
//
// Thread contract: run() on the worker's own thread. counters(), latency(),
// live() and send_lag() may be read from any thread at any time; failures() only
// after done() is true.

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <queue>
#include <string>
#include <vector>

#include "bench/fluxbench/connection.h"
#include "bench/fluxbench/connector.h"
#include "bench/fluxbench/counters.h"
#include "bench/fluxbench/histogram.h"
#include "bench/fluxbench/options.h"
#include "bench/fluxbench/run_control.h"
#include "common/fd.h"

namespace flux::bench {

class Worker {
 public:
  Worker(const Options& options, const Target& target, RunControl& control, uint32_t first_conn,
         uint32_t conn_count);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The thread body; returns after the hard stop at the latest.
  void run();

  bool done() const noexcept { return done_.load(std::memory_order_acquire); }
  const WorkerCounters& counters() const noexcept { return counters_; }
  // Echo latency of frames sent in the measured window (from the intended time).
  const LatencyRecorder& latency() const noexcept { return latency_; }
  // Every echo, warm-up and drain included: the progress line's view.
  const LatencyRecorder& live() const noexcept { return live_; }
  // Open loop: how late frames left compared with their schedule.
  const LatencyRecorder& send_lag() const noexcept { return send_lag_; }
  // --churn: drop -> FLUX_READY received, per resume.
  const LatencyRecorder& resume_latency() const noexcept { return resume_latency_; }
  // "what: why" -> count, for every failure. Only after done().
  const std::map<std::string, uint64_t>& failures() const noexcept { return failures_; }

 private:
  using TimerEntry = std::pair<uint64_t, uint32_t>;  // (due ns, local index)
  using TimerHeap = std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>>;

  // Phases
  void connect_phase(uint64_t now);
  void open_more(uint64_t now);
  void expire_pending(uint64_t now);
  void start_traffic(uint64_t start_ns, uint64_t now);
  void traffic_phase(uint64_t now);
  void end_sweep(uint64_t now);
  void hard_stop();
  uint64_t next_wake(uint64_t now) const;

  // --churn (churn.h)
  void churn_tick(uint64_t now);
  void drop(Connection& c, uint64_t now);
  bool resumes_on_close(const Connection& c) const noexcept;
  void server_closed(Connection& c);
  // A resume the server closed before answering: tried again (bounded), or failed.
  void resume_closed(Connection& c, const std::string& why);
  void stop_writing(Connection& c);
  void reconnect(Connection& c, uint64_t now);
  void on_reconnected(Connection& c);
  bool on_resume_reply(Connection& c, const uint8_t* payload, uint32_t len, uint64_t now);
  void resend_unread(Connection& c);
  void expire_resumes(uint64_t now);
  void resume_failed(Connection& c, const std::string& why);

  // Events
  void wait_and_dispatch(uint64_t timeout_ns);
  void on_event(Connection& c, uint32_t events);
  void on_connected(Connection& c);
  void on_readable(Connection& c);
  bool on_frame(Connection& c, const uint8_t* payload, uint32_t len, uint64_t now);
  bool on_ready_frame(Connection& c, const uint8_t* payload, uint32_t len, uint64_t now);
  bool on_echo(Connection& c, const uint8_t* payload, uint32_t len, uint64_t now);
  void on_writable(Connection& c);

  // Sending
  void refill(Connection& c, uint64_t now);
  void send_due(Connection& c, uint64_t now);
  void emit(Connection& c, uint64_t count, uint64_t now);
  void write_out(Connection& c, const uint8_t* data, size_t len);
  void schedule(Connection& c);
  void run_timers();
  void try_finish(Connection& c, uint64_t now);
  bool sending_over(const Connection& c, uint64_t now) const;

  // Bookkeeping
  void watch_connect(Connection& c, uint32_t index);
  void set_write_interest(Connection& c, bool on);
  void close(Connection& c);
  void fail(Connection& c, Counter& counter, const std::string& why);
  void lose_in_flight(Connection& c);
  void note(const std::string& why, uint64_t n = 1) { failures_[why] += n; }
  uint32_t max_payload(const Connection& c) const noexcept;

  const Options& options_;
  const Target target_;
  RunControl& control_;
  Fd epoll_;
  std::vector<Connection> conns_;
  std::vector<uint8_t> in_scratch_;
  std::vector<uint8_t> out_scratch_;
  std::deque<uint32_t> pending_;  // connecting/handshaking, in opening order
  TimerHeap timers_;

  uint64_t began_ns_ = 0;
  uint32_t opened_ = 0;       // connections started (in local index order)
  uint32_t in_progress_ = 0;  // connecting + handshaking
  uint32_t open_count_ = 0;   // not idle, not done
  double connect_rate_ = 0;   // this worker's share, per second
  bool started_ = false;
  bool swept_ = false;
  bool finished_ = false;
  Timeline timeline_;

  // --churn
  double drop_period_ns_ = 0;  // this worker's share of the rate; 0 = no churn
  uint64_t next_drop_ns_ = 0;
  uint32_t drop_cursor_ = 0;        // round-robin over conns_
  std::vector<uint32_t> resuming_;  // reconnecting/resuming, for their deadlines
  // --resume-on-close: tries of one resume whose connection the server closes unanswered.
  static constexpr unsigned kResumeRetries = 5;
  std::vector<uint8_t> resend_scratch_;

  WorkerCounters counters_;
  LatencyRecorder latency_;
  LatencyRecorder live_;
  LatencyRecorder send_lag_;
  LatencyRecorder resume_latency_;
  std::map<std::string, uint64_t> failures_;
  std::atomic<bool> done_{false};
};

}  // namespace flux::bench
