// The loop's insight, in-process (metrics/stall_watchdog.h,
// metrics/loop_activity.h): a real Reactor on its own thread, watched by the
// metrics server's watchdog thread.
//
//   - a task that holds the loop 200 ms is one stall: activity `task`,
//     200 ms +- 20 %, shown "ongoing" while it lasts, counted once, its
//     duration recorded once, reported (logged) once;
//   - a reactor busy reading a flooding socketpair shows `read` with that
//     connection's id in its activity word, and the profile counts `read`;
//   - an idle reactor's profile is (almost) all `poll`.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "gateway/reactor.h"
#include "gateway/reactor_handle.h"
#include "metrics/metrics_server.h"
#include "tests/gateway/reactor_driver.h"

namespace flux {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Options quiet_options() {
  Options options;
  options.port = 0;
  options.linger = Millis{200};
  return options;
}

template <typename Done>
bool wait_until(Done done, std::chrono::milliseconds limit = 10s) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A reactor running on its own thread, as in the gateway.
class RunningReactor {
 public:
  explicit RunningReactor(const Options& options) : reactor_(options) {
    thread_ = std::thread([this] { reactor_.run(); });
  }
  ~RunningReactor() {
    reactor_.request_shutdown();
    thread_.join();
  }
  Reactor& operator*() { return reactor_; }
  Reactor* operator->() { return &reactor_; }

 private:
  Reactor reactor_;
  std::thread thread_;
};

// What the watchdog reported (the gateway logs each one).
struct Reports {
  std::mutex mutex;
  std::vector<StallRecord> records;
  void add(const StallRecord& r) {
    log_stall(r);  // the gateway's line, on stderr
    std::lock_guard lock(mutex);
    records.push_back(r);
  }
  size_t size() {
    std::lock_guard lock(mutex);
    return records.size();
  }
};

MetricsServerConfig server_config(Reports& reports, std::chrono::microseconds threshold) {
  MetricsServerConfig config;
  config.port = 0;
  config.stall_threshold = threshold;
  config.profile_hz = 97;
  config.on_stall = [&reports](const StallRecord& r) { reports.add(r); };
  return config;
}

uint64_t samples(const Reactor& reactor) {
  uint64_t n = 0;
  for (const auto& cell : reactor.metrics().watchdog.activity_samples_total) n += cell.get();
  return n;
}

TEST(InsightTest, ATaskHoldingTheLoop200msIsOneStall) {
  RunningReactor reactor(quiet_options());
  Reports reports;
  MetricsServer server(server_config(reports, 50'000us), {metrics_handle(*reactor)});
  std::string error;
  ASSERT_TRUE(server.start(error)) << error;
  ASSERT_TRUE(wait_until([&] { return reactor->metrics().loop.iterations_total.get() > 0; }));

  // The task holds the loop until the test lets it go, 200 ms after it began.
  std::mutex mutex;
  std::condition_variable cv;
  bool released = false;
  std::atomic<int64_t> began_ns{0};
  reactor->post([&] {
    began_ns.store(Clock::now().time_since_epoch().count());
    std::unique_lock lock(mutex);
    cv.wait_for(lock, 5s, [&] { return released; });
  });

  // While it lasts, /stalls shows it ongoing.
  nlohmann::json ongoing;
  ASSERT_TRUE(wait_until([&] {
    auto body = nlohmann::json::parse(server.stalls_json(false));
    if (body["stalls"].empty()) return false;
    ongoing = body["stalls"][0];
    return true;
  }));
  EXPECT_EQ(ongoing["ongoing"], true);
  EXPECT_EQ(ongoing["activity"], "task");
  EXPECT_EQ(ongoing["reactor"], "0");
  EXPECT_GE(ongoing["duration_seconds"].get<double>(), 0.050);
  EXPECT_TRUE(ongoing["connection"].is_null());

  std::this_thread::sleep_until(Clock::time_point(Clock::duration(began_ns.load())) + 200ms);
  {
    std::lock_guard lock(mutex);
    released = true;
  }
  cv.notify_all();
  ASSERT_TRUE(wait_until([&] { return reports.size() >= 1; }));

  // Let the watchdog look many more times: still one.
  const uint64_t seen = samples(*reactor);
  ASSERT_TRUE(wait_until([&] { return samples(*reactor) >= seen + 5; }));

  auto body = nlohmann::json::parse(server.stalls_json(false));
  EXPECT_DOUBLE_EQ(body["threshold_seconds"].get<double>(), 0.050);
  ASSERT_EQ(body["stalls"].size(), 1u) << body.dump();
  const nlohmann::json& stall = body["stalls"][0];
  EXPECT_EQ(stall["ongoing"], false);
  EXPECT_EQ(stall["activity"], "task");
  const double duration = stall["duration_seconds"].get<double>();
  EXPECT_GE(duration, 0.160);
  EXPECT_LE(duration, 0.240);
  EXPECT_GT(stall["start_unix_seconds"].get<double>(), 1.6e9);

  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports.records[0].activity, Activity::kTask);
  EXPECT_DOUBLE_EQ(reports.records[0].duration_seconds, duration);

  const WatchdogMetrics& cells = reactor->metrics().watchdog;
  EXPECT_EQ(cells.stalls_total[size_t(Activity::kTask)].get(), 1u);
  uint64_t stalls = 0;
  for (const auto& cell : cells.stalls_total) stalls += cell.get();
  EXPECT_EQ(stalls, 1u);
  const HistogramSnapshot durations = cells.stall_duration.snapshot();
  EXPECT_EQ(durations.count(), 1u);
  EXPECT_NEAR(double(durations.sum_ns) / 1e9, duration, 1e-6);

  // The exposition carries both families.
  const std::string text = server.metrics_text();
  EXPECT_NE(text.find("flux_loop_stalls_total{reactor=\"0\",activity=\"task\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("flux_loop_stall_duration_seconds_count{reactor=\"0\"} 1"),
            std::string::npos);
  server.stop();
}

TEST(InsightTest, AFloodedReactorShowsReadWithTheConnectionsId) {
  RunningReactor reactor(quiet_options());
  Reports reports;
  MetricsServer server(server_config(reports, 50'000us), {metrics_handle(*reactor)});
  std::string error;
  ASSERT_TRUE(server.start(error)) << error;

  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  Fd client(pair[0]);
  auto served = std::make_shared<Fd>(pair[1]);
  reactor->post([&r = *reactor, served] { r.serve_connected(std::move(*served)); });

  const std::string hello = testing::frame("FLUX_HELLO 1");
  ASSERT_EQ(::send(client.get(), hello.data(), hello.size(), MSG_NOSIGNAL), ssize_t(hello.size()));
  // The connection's id, from its listing on the reactor's thread.
  std::atomic<uint64_t> id{0};
  ASSERT_TRUE(wait_until([&] {
    std::atomic<bool> done{false};
    reactor->post([&] {
      for (const ConnectionInfo& row : reactor->list_connections())
        if (row.state == "ready") id.store(row.id);
      done.store(true);
    });
    wait_until([&] { return done.load(); });
    return id.load() != 0;
  }));

  // Flood: one thread writes frames as fast as the socket takes them, another
  // reads the echoes (so back-pressure never pauses the reader).
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    const std::string chunk = [] {
      std::string out;
      for (int i = 0; i < 64; ++i) out += testing::frame(std::string(1000, 'x'));
      return out;
    }();
    while (!stop.load())
      if (::send(client.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) break;
  });
  std::thread reader([&] {
    char buf[65536];
    while (!stop.load())
      if (::recv(client.get(), buf, sizeof buf, 0) <= 0) break;
  });

  const uint64_t read_before =
      reactor->metrics().watchdog.activity_samples_total[size_t(Activity::kRead)].get();
  bool seen = false;
  const bool found = wait_until([&] {
    const uint64_t word = reactor->metrics().activity.word.load(std::memory_order_relaxed);
    if (word_activity(word) == Activity::kRead && word_connection(word) == id.load()) seen = true;
    const uint64_t reads =
        reactor->metrics().watchdog.activity_samples_total[size_t(Activity::kRead)].get();
    return seen && reads > read_before;
  });
  stop.store(true);
  ::shutdown(client.get(), SHUT_RDWR);
  writer.join();
  reader.join();
  EXPECT_TRUE(found) << "seen read of connection " << id.load() << ": " << seen;
  server.stop();
}

TEST(InsightTest, AnIdleReactorsProfileIsPoll) {
  RunningReactor reactor(quiet_options());
  Reports reports;
  MetricsServer server(server_config(reports, 0us), {metrics_handle(*reactor)});
  std::string error;
  ASSERT_TRUE(server.start(error)) << error;
  ASSERT_TRUE(wait_until([&] { return samples(*reactor) >= 200; }, 20s));
  const auto& cells = reactor->metrics().watchdog.activity_samples_total;
  const double poll = double(cells[size_t(Activity::kPoll)].get()) / double(samples(*reactor));
  EXPECT_GE(poll, 0.95);
  // Stalls off: nothing recorded, whatever happens.
  EXPECT_EQ(nlohmann::json::parse(server.stalls_json(false))["stalls"].size(), 0u);
  server.stop();
}

}  // namespace
}  // namespace flux
