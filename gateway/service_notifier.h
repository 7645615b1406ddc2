#pragma once
// ServiceNotifier: the gateway's side of systemd's Type=notify protocol
// (sd_notify(3)), the one unit that knows about the service manager.
//
//   main                          flux-watchdog thread          systemd
//   ----                          --------------------          -------
//   ports bound, line printed
//   ready()  ---- READY=1 ------------------------------------> "started"
//                                 every WatchdogSec / 2:
//                                   healthy()? -- WATCHDOG=1 -> timer reset
//                                   else withhold (logged once per episode)
//   SIGTERM: stopping() -- STOPPING=1 ------------------------> "stopping"
//   ~ServiceNotifier: the thread is woken and joined
//
// `healthy` answers whether every reactor has turned its loop recently
// (main passes loops_turned_within() with /healthz's 2 s bound, on the same
// source: each reactor's last-turn stamp), so a stuck reactor stops the
// pings and systemd restarts the gateway once WatchdogSec has passed
// without one. Unlike /healthz, a drain is not unhealthy here: a gateway
// draining with turning loops keeps pinging, and one stuck in its drain is
// still caught.
//
// Without NOTIFY_SOCKET in the environment it does nothing: no message, no
// thread. The watchdog runs only when systemd asked for it (WATCHDOG_USEC
// set and WATCHDOG_PID, if set, naming this process: sd_watchdog_enabled).
//
// Thread contract: construct, ready(), stopping() and destroy from one
// thread (main); `healthy` is called on the flux-watchdog thread and must
// be safe there.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "metrics/reactor_metrics.h"

namespace flux {

// Any thread: true while every reactor's loop turned within `bound` (its
// 100 ms tick stamps loop.last_turn_monotonic_ns; /healthz reads the same).
bool loops_turned_within(const std::vector<const ReactorMetrics*>& reactors,
                         std::chrono::milliseconds bound) noexcept;

class ServiceNotifier {
 public:
  // Reads NOTIFY_SOCKET and the watchdog variables; starts nothing yet.
  explicit ServiceNotifier(std::function<bool()> healthy);
  ~ServiceNotifier();
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  // True when a service manager listens (NOTIFY_SOCKET is set).
  bool enabled() const noexcept { return enabled_; }
  // The ping period (half of WatchdogSec); zero when there is no watchdog.
  std::chrono::microseconds watchdog_interval() const noexcept { return interval_; }

  // READY=1 with `status` as STATUS=, then starts the watchdog thread.
  // Call once, after every listening socket is bound.
  void ready(std::string_view status);
  // STOPPING=1 with `status`: the drain has begun. The watchdog keeps
  // pinging while the reactors turn, so a drain that hangs is caught too.
  void stopping(std::string_view status);

 private:
  void notify(std::string_view message) noexcept;
  void watchdog_loop();
  void ping_or_withhold(bool& withheld);

  std::function<bool()> healthy_;
  bool enabled_ = false;
  std::chrono::microseconds interval_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool quit_ = false;                              // guarded by mutex_
  std::atomic<bool> notify_failed_logged_{false};  // main and watchdog thread
  std::thread thread_;                             // last: joined before the members it uses go
};

}  // namespace flux
