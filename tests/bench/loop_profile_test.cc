// The loop profile against two independent measurements (docs/stats.md,
// "The loop's activity"): the real gateway under fluxbench's throughput
// profile (100 connections, window 16, closed loop), read through /stats.
//
//   - idle, the profile is >= 95 % poll;
//   - loaded, read + write take more than 30 % of the samples, and
//     1 - share(poll) agrees with the loop utilisation the gateway measures
//     with the clock (busy / (busy + poll)) within 0.1, over the same 10 s.
//   - with --stall-threshold 1ms, the same load yields stall records that
//     name read or write and a connection listed in /connections meanwhile.
//
// The figures are printed as measured.

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/gateway_process.h"
#include "support/metrics_http.h"
#include "support/subprocess.h"

namespace flux::itest {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string fluxbench_bin() {
  const char* from_env = std::getenv("FLUXBENCH_BIN");
  return from_env != nullptr && *from_env != '\0' ? from_env : FLUXBENCH_BIN;
}

// fluxbench's throughput profile (100 connections, window 16, 64 B, closed
// loop, 1 s warm-up) against `port` for `duration`, in the background.
pid_t spawn_throughput_load(uint16_t port, const std::string& duration) {
  ChildSpec spec;
  spec.argv = {fluxbench_bin(), "--port",       std::to_string(port), "--conns", "100",
               "--window",      "16",           "--warmup",           "1s",      "--duration",
               duration,        "--no-progress"};
  return spawn(spec);
}

struct Profile {
  double poll = 0, read_write = 0, utilisation = 0;
  uint64_t samples = 0;
};

std::optional<Profile> profile_10s(MetricsHttp& http) {
  auto stats = http.get_json("/stats");
  if (!stats) return std::nullopt;
  const json& total = (*stats)["total"];
  const json& share = total["profile"]["10s"]["share"];
  Profile p;
  p.poll = share["poll"];
  p.read_write = share["read"].get<double>() + share["write"].get<double>();
  p.utilisation = total["rates"]["10s"]["loop_utilization"];
  p.samples = total["profile"]["10s"]["samples"];
  return p;
}

TEST(LoopProfile, IdleIsPollAndLoadedAgreesWithTheLoopClock) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--profile-hz", "97"}));
  MetricsHttp http(gateway.metrics_port());

  // Idle: wait for a full 10 s window of samples.
  std::optional<Profile> idle;
  const Deadline idle_deadline = after(seconds(30));
  while (Clock::now() < idle_deadline) {
    idle = profile_10s(http);
    if (idle && idle->samples >= 900) break;
    std::this_thread::sleep_for(milliseconds(200));
  }
  ASSERT_TRUE(idle && idle->samples >= 900);
  std::printf("idle: share(poll) %.3f over %llu samples; loop utilisation %.3f\n", idle->poll,
              static_cast<unsigned long long>(idle->samples), idle->utilisation);
  EXPECT_GE(idle->poll, 0.95);

  // Loaded: fluxbench for 1 s warm-up + 12 s; the 10 s window is read once
  // it lies wholly inside the load (10.5 s after the first echoes).
  const pid_t bench = spawn_throughput_load(gateway.port(), "12s");
  ASSERT_GT(bench, 0);
  std::optional<Clock::time_point> load_began;
  std::optional<Profile> loaded;
  const Deadline load_deadline = after(seconds(40));
  while (Clock::now() < load_deadline) {
    auto stats = http.get_json("/stats");
    if (stats && !load_began && (*stats)["total"]["rates"]["1s"]["frames_in"].get<double>() > 0)
      load_began = Clock::now() - seconds(1);  // the 1 s window that saw it began up to 1 s ago
    if (load_began && Clock::now() >= *load_began + milliseconds(11'500)) {
      loaded = profile_10s(http);
      break;
    }
    std::this_thread::sleep_for(milliseconds(200));
  }
  const std::optional<ExitStatus> status = wait_exit(bench, after(seconds(30)));
  if (!status) kill_and_wait(bench);
  ASSERT_TRUE(loaded) << "no loaded window";
  std::printf(
      "loaded: share(read) + share(write) %.3f, 1 - share(poll) %.3f, loop utilisation "
      "%.3f (%llu samples)\n",
      loaded->read_write, 1 - loaded->poll, loaded->utilisation,
      static_cast<unsigned long long>(loaded->samples));
  EXPECT_GT(loaded->read_write, 0.30);
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || \
    __has_feature(address_sanitizer)  // clang-14: no __SANITIZE_THREAD__
#define FLUX_UNDER_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__) || defined(FLUX_UNDER_SANITIZER)
  // Not under a sanitizer: there the reactor and fluxbench each take a
  // whole core, and the sampler thread runs mostly when the reactor blocks
  // in epoll_wait, so its samples lean to `poll` (CI: 0.60 against a
  // clock's 0.74 under ThreadSanitizer, 0.36 against 0.46 under
  // AddressSanitizer). Those runs are for races and memory errors; the
  // release run checks the agreement.
  std::printf("under a sanitizer: agreement not checked\n");
#else
  EXPECT_NEAR(1 - loaded->poll, loaded->utilisation, 0.1);
#endif
  EXPECT_TRUE(status && status->success()) << "fluxbench failed";
  gateway.signal(SIGTERM);
  const std::optional<ExitStatus> exit = gateway.wait_exit(after(seconds(10)));
  EXPECT_TRUE(exit && exit->success());
}

// docs/stats.md, "Stalls": under fluxbench's throughput profile a 1 ms
// threshold is crossed by connection work, and the record names a
// connection that exists (reactor/id as /connections lists it).
TEST(LoopStalls, UnderTheThroughputProfileStallsNameReadOrWriteOfARealConnection) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--stall-threshold", "1ms"}));
  MetricsHttp http(gateway.metrics_port());
  const pid_t bench = spawn_throughput_load(gateway.port(), "8s");
  ASSERT_GT(bench, 0);
  std::set<std::string> listed;  // reactor/id of every connection seen during the load
  json found;
  const Deadline deadline = after(seconds(30));
  while (Clock::now() < deadline && found.is_null()) {
    if (auto page = http.get_json("/connections?limit=10000"))
      for (const json& row : (*page)["connections"])
        listed.insert(row["reactor"].get<std::string>() + "/" +
                      std::to_string(row["id"].get<int>()));
    if (auto stalls = http.get_json("/stalls")) {
      for (const json& s : (*stalls)["stalls"]) {
        const std::string activity = s["activity"];
        // A finished record: an ongoing one has not looked its peer up yet.
        if ((activity != "read" && activity != "write") || !s["connection"].is_number() ||
            s["ongoing"].get<bool>())
          continue;
        const std::string id =
            s["reactor"].get<std::string>() + "/" + std::to_string(s["connection"].get<uint64_t>());
        if (listed.count(id)) {
          found = s;
          break;
        }
      }
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  const std::optional<ExitStatus> status = wait_exit(bench, after(seconds(30)));
  if (!status) kill_and_wait(bench);
  ASSERT_FALSE(found.is_null()) << "no stall naming read or write of a listed connection ("
                                << listed.size() << " connections listed)";
  std::printf("a stall under the throughput profile, as served: %s\n", found.dump().c_str());
  EXPECT_GE(found["duration_seconds"].get<double>(), 0.001);
  EXPECT_NE(found["peer"].get<std::string>(), "");
  EXPECT_TRUE(status && status->success()) << "fluxbench failed";
}

}  // namespace
}  // namespace flux::itest
