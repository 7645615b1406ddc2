// ServiceNotifier in-process: a real Reactor on its own thread, the health
// test main uses (loops_turned_within() on the reactor's metrics, here with
// a 500 ms bound instead of 2 s), and a stand-in for systemd's notification
// socket. A task posted to the reactor sleeps 1.5 s: the WATCHDOG=1 pings
// must stop while it stalls and come back once it returns.

#include "gateway/service_notifier.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/reactor.h"
#include "metrics/thread_names.h"
#include "packaging/notify_socket.h"

namespace flux {
namespace {

using namespace std::chrono_literals;
using ptest::Clock;
using ptest::Notification;
using ptest::NotifySocket;

// Sets (or, with nullopt, removes) one environment variable for a scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

bool watchdog_thread_exists() {
  const auto threads = list_threads();
  return std::any_of(threads.begin(), threads.end(),
                     [](const ThreadInfo& t) { return t.name == "flux-watchdog"; });
}

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

TEST(ServiceNotifier, DoesNothingWithoutNotifySocket) {
  ScopedEnv socket("NOTIFY_SOCKET", std::nullopt);
  ScopedEnv usec("WATCHDOG_USEC", "200000");
  ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid()));
  int health_checks = 0;
  ServiceNotifier notifier([&] { return ++health_checks > 0; });
  notifier.ready("test");
  notifier.stopping("test");
  EXPECT_FALSE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_interval().count(), 0);
  EXPECT_FALSE(watchdog_thread_exists());
  EXPECT_EQ(health_checks, 0);
}

TEST(ServiceNotifier, NoWatchdogWhenItIsForAnotherProcess) {
  NotifySocket manager;
  ScopedEnv socket("NOTIFY_SOCKET", manager.path());
  ScopedEnv usec("WATCHDOG_USEC", "200000");
  ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid() + 1));
  ServiceNotifier notifier([] { return true; });
  EXPECT_TRUE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_interval().count(), 0);
  notifier.ready("test");
  auto ready = manager.receive(Clock::now() + 5s);
  ASSERT_TRUE(ready);
  EXPECT_TRUE(ready->has("READY=1")) << ready->text;
  EXPECT_TRUE(ready->has("STATUS=test")) << ready->text;
  EXPECT_FALSE(watchdog_thread_exists());
}

// A real reactor on its own thread, stopped and joined on scope exit.
class RunningReactor {
 public:
  RunningReactor() : reactor_(options()) {
    std::string error;
    if (!reactor_.listen(error)) throw std::runtime_error(error);
    thread_ = std::thread([this] { reactor_.run(); });
  }
  ~RunningReactor() {
    reactor_.request_shutdown();
    thread_.join();
  }
  Reactor& get() { return reactor_; }

 private:
  static Options options() {
    Options o;
    o.port = 0;
    return o;
  }
  Reactor reactor_;
  std::thread thread_;
};

TEST(ServiceNotifier, WatchdogStopsWhileAReactorStallsAndResumesAfter) {
  NotifySocket manager;
  ScopedEnv socket("NOTIFY_SOCKET", manager.path());
  ScopedEnv usec("WATCHDOG_USEC", "200000");  // pings every 100 ms
  ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid()));

  RunningReactor reactor;
  const std::vector<const ReactorMetrics*> loops{&reactor.get().metrics()};
  // main uses /healthz's 2 s; shorter here, for a short stall.
  ServiceNotifier notifier([&loops] { return loops_turned_within(loops, 500ms); });
  ASSERT_EQ(notifier.watchdog_interval(), std::chrono::microseconds(100'000));
  notifier.ready("test");

  std::vector<Notification> seen;
  ASSERT_TRUE(manager.receive_until("READY=1", Clock::now() + 5s, seen));
  // Healthy: pings flow, from a thread that named itself before the first.
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(manager.receive_until("WATCHDOG=1", Clock::now() + 2s, seen)) << "ping " << i;
  EXPECT_TRUE(watchdog_thread_exists());

  std::atomic<Clock::rep> stall_begin{0}, stall_end{0};
  reactor.get().post([&] {
    stall_begin = Clock::now().time_since_epoch().count();
    std::this_thread::sleep_for(1500ms);  // the stuck reactor under test
    stall_end = Clock::now().time_since_epoch().count();
  });
  // Everything up to the first ping after the stall.
  std::vector<Notification> during;
  const auto deadline = Clock::now() + 8s;
  std::optional<Notification> after;
  while (!after) {
    auto n = manager.receive_until("WATCHDOG=1", deadline, during);
    ASSERT_TRUE(n) << "no ping within 8 s of the stall's start";
    if (stall_end != 0 && n->at.time_since_epoch().count() > stall_end) after = n;
  }
  const Clock::time_point begin{Clock::duration(stall_begin.load())};
  const Clock::time_point end{Clock::duration(stall_end.load())};
  // Unhealthy from begin + 500 ms at the latest (the last turn was at or
  // before `begin`); one ping checked just before may still be in flight.
  const Clock::time_point quiet_from = begin + 900ms;
  size_t pings_in_stall = 0, pings_before = 0;
  double last_ping_ms = -1;
  for (const Notification& n : during) {
    if (!n.has("WATCHDOG=1") || n.at < begin) continue;
    if (n.at <= end) last_ping_ms = ms_between(begin, n.at);
    if (n.at >= quiet_from && n.at <= end) ++pings_in_stall;
    if (n.at < quiet_from) ++pings_before;
  }
  const double resumed_ms = ms_between(end, after->at);
  printf(
      "stall %.0f ms; pings in its first 900 ms: %zu, last at +%.0f ms; in the rest: %zu; "
      "first ping %.0f ms after it ended\n",
      ms_between(begin, end), pings_before, last_ping_ms, pings_in_stall, resumed_ms);
  EXPECT_EQ(pings_in_stall, 0u) << "WATCHDOG=1 sent while the reactor was stuck";
  EXPECT_LT(resumed_ms, 1000.0) << "pings did not resume promptly";
}

}  // namespace
}  // namespace flux
