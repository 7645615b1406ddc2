// fluxbench smoke test: the real binaries over loopback, at small scale.
// It checks that fluxbench measures correctly (zero errors, frames counted,
// percentiles ordered, failures counted, bounds kept), not how fast anything
// is. Binaries come from CMake (FLUXBENCH_BIN, FLUX_GATEWAY_BIN,
// FLUX_BASELINE_BIN); an environment variable of the same name overrides each.

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/gateway_process.h"
#include "support/subprocess.h"

namespace flux::itest {
namespace {

using nlohmann::json;
using std::chrono::seconds;

std::string binary(const char* env_name, const char* built) {
  const char* from_env = std::getenv(env_name);
  return from_env != nullptr && *from_env != '\0' ? from_env : built;
}

std::string fluxbench() {
  return binary("FLUXBENCH_BIN", FLUXBENCH_BIN);
}

// The exit code of a command that ended by itself; nullopt if it was killed
// at the deadline or by a signal.
std::optional<int> exit_code(const RunResult& r) {
  if (!r.status || !r.status->exited) return std::nullopt;
  return r.status->code;
}

// SIGTERM, then up to `timeout` for the exit: its code, or nullopt if it died
// by a signal or was still running (then it is killed).
std::optional<int> stop(GatewayProcess& server, seconds timeout) {
  server.signal(SIGTERM);
  const std::optional<ExitStatus> status = server.wait_exit(after(timeout));
  if (!status || !status->exited) return std::nullopt;
  return status->code;
}

// Runs fluxbench --json with `args`; the process must finish well inside
// its own bound (connect budget + warm-up + duration + grace).
json run_fluxbench(std::vector<std::string> args, int expected_exit = 0) {
  args.insert(args.begin(), {fluxbench(), "--json", "--no-progress"});
  const RunResult r = run(args, after(seconds(20)));
  EXPECT_TRUE(exit_code(r).has_value()) << "fluxbench did not stop by itself";
  EXPECT_EQ(exit_code(r).value_or(-1), expected_exit) << r.out << r.err;
  const json j = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << "not JSON: " << r.out;
  return j.is_object() ? j : json::object();
}

void expect_clean(const json& j, uint64_t conns) {
  EXPECT_EQ(j["result"], "ok") << j.dump(2);
  EXPECT_EQ(j["errors"], 0);
  EXPECT_EQ(j["frames"]["mismatched"], 0);
  EXPECT_EQ(j["frames"]["lost"], 0);
  EXPECT_EQ(j["frames"]["server_errors"], 0);
  EXPECT_EQ(j["connections"]["ready"], conns);
  EXPECT_EQ(j["connections"]["closed_clean"], conns) << "every connection ends with FLUX_BYE";
  EXPECT_GT(j["frames"]["received_measured"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["frames"]["sent"], j["frames"]["received"]);
  EXPECT_GT(j["throughput"]["frames_per_second"].get<double>(), 0.0);
}

void expect_ordered_percentiles(const json& latency) {
  ASSERT_TRUE(latency.is_object());
  EXPECT_GT(latency["count"].get<uint64_t>(), 0u);
  const std::vector<const char*> keys = {"p50", "p90", "p99", "p999", "p9999", "max"};
  double previous = 0;
  for (const char* key : keys) {
    const double v = latency[key].get<double>();
    EXPECT_GE(v, previous) << key << " in " << latency.dump();
    previous = v;
  }
  EXPECT_GT(latency["p50"].get<double>(), 0.0);
}

std::vector<std::string> target(uint16_t port) {
  return {"--port", std::to_string(port)};
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class GatewaySmoke : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(gateway_.start_command(
        {binary("FLUX_GATEWAY_BIN", FLUX_GATEWAY_BIN), "--port", "0", "--metrics-port", "0"}));
  }
  std::string stats_url() const {
    return "http://127.0.0.1:" + std::to_string(gateway_.metrics_port()) + "/stats";
  }
  GatewayProcess gateway_;
};

TEST_F(GatewaySmoke, ClosedLoopEchoesEverythingInOrder) {
  const json j =
      run_fluxbench(target(gateway_.port()) +
                    std::vector<std::string>{"--conns", "50", "--window", "4", "--warmup", "500ms",
                                             "--duration", "2500ms", "--stats-url", stats_url()});
  expect_clean(j, 50);
  expect_ordered_percentiles(j["latency_us"]);
  EXPECT_TRUE(j["send_lag_us"].is_null());
  ASSERT_TRUE(j["seconds"].is_array());
  EXPECT_GE(j["seconds"].size(), 1u) << "whole seconds inside the measured window";
  ASSERT_TRUE(j["server"].is_object()) << "--stats-url was given";
  EXPECT_GE(j["server"]["samples"].get<int>(), 1);
  EXPECT_TRUE(j["server"]["cpu_percent"].is_number()) << j["server"].dump();
}

TEST_F(GatewaySmoke, OpenLoopKeepsItsSchedule) {
  const json j =
      run_fluxbench(target(gateway_.port()) +
                    std::vector<std::string>{"--conns", "50", "--rate", "2000", "--warmup", "500ms",
                                             "--duration", "1500ms", "--threads", "2"});
  expect_clean(j, 50);
  expect_ordered_percentiles(j["latency_us"]);
  expect_ordered_percentiles(j["send_lag_us"]);
  // 1.5 s at 2000/s: the schedule, not the server's speed, sets the count.
  EXPECT_NEAR(j["latency_us"]["count"].get<double>(), 3000.0, 3000.0 * 0.05);
}

// --churn: 200 connections, 20 drops/s in all (one every 50 ms), window 4,
// ~5 s: every echo arrives exactly once and in order across the drops and
// resumes, no resume fails, and the gateway still shuts down cleanly.
void expect_churn_clean(const std::vector<std::string>& gateway_flags) {
  GatewayProcess gateway;
  std::vector<std::string> argv = {binary("FLUX_GATEWAY_BIN", FLUX_GATEWAY_BIN), "--port", "0",
                                   "--metrics-port", "0"};
  argv.insert(argv.end(), gateway_flags.begin(), gateway_flags.end());
  ASSERT_TRUE(gateway.start_command(argv));
  const json j =
      run_fluxbench(target(gateway.port()) +
                    std::vector<std::string>{"--conns", "200", "--window", "4", "--churn", "20",
                                             "--warmup", "500ms", "--duration", "4500ms"});
  expect_clean(j, 200);
  ASSERT_TRUE(j["churn"].is_object()) << j.dump(2);
  const json& churn = j["churn"];
  EXPECT_GT(churn["resumes"].get<uint64_t>(), 50u) << churn.dump();
  EXPECT_EQ(churn["resumes"], churn["drops"]) << churn.dump();
  EXPECT_EQ(churn["resume_failures"], 0) << churn.dump();
  expect_ordered_percentiles(churn["resume_latency_us"]);
  EXPECT_EQ(churn["resume_latency_us"]["count"], churn["resumes"]);
  EXPECT_EQ(stop(gateway, seconds(10)), std::optional<int>(0)) << "gateway exit on SIGTERM";
}

TEST(ChurnSmoke, EveryEchoExactlyOnceAcrossResumes) {
  expect_churn_clean({});
}

TEST(ChurnSmoke, EveryEchoExactlyOnceAcrossResumesOnFourReactors) {
  expect_churn_clean({"--reactors", "4"});
}

TEST(ChurnSmoke, OpenLoopResumesKeepTheSchedule) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start_command(
      {binary("FLUX_GATEWAY_BIN", FLUX_GATEWAY_BIN), "--port", "0", "--metrics-port", "0"}));
  const json j = run_fluxbench(target(gateway.port()) +
                               std::vector<std::string>{"--conns", "50", "--rate", "2000",
                                                        "--churn", "20", "--warmup", "500ms",
                                                        "--duration", "1500ms", "--threads", "2"});
  expect_clean(j, 50);
  EXPECT_GT(j["churn"]["resumes"].get<uint64_t>(), 20u) << j["churn"].dump();
  EXPECT_EQ(j["churn"]["resume_failures"], 0);
  EXPECT_NEAR(j["latency_us"]["count"].get<double>(), 3000.0, 3000.0 * 0.05);
}

TEST(ChurnSmoke, ResumeRefusedIsAFailure) {
  // --replay-frames 0: a drop with echoes still in flight (window 8) leaves a
  // replay gap, FLUX_INVALID replay-gap; fluxbench must count it and fail.
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start_command({binary("FLUX_GATEWAY_BIN", FLUX_GATEWAY_BIN), "--port", "0",
                                     "--metrics-port", "0", "--replay-frames", "0"}));
  const json j = run_fluxbench(
      target(gateway.port()) + std::vector<std::string>{"--conns", "20", "--window", "8", "--size",
                                                        "1024", "--churn", "20", "--warmup",
                                                        "200ms", "--duration", "1s"},
      /*expected_exit=*/1);
  EXPECT_EQ(j["result"], "errors");
  EXPECT_GT(j["churn"]["resume_failures"].get<uint64_t>(), 0u) << j["churn"].dump();
}

TEST(BaselineSmoke, ClosedLoopAgainstTheSpeedOfLight) {
  GatewayProcess baseline;
  ASSERT_TRUE(
      baseline.start_command({binary("FLUX_BASELINE_BIN", FLUX_BASELINE_BIN), "--port", "0"}));
  EXPECT_EQ(baseline.metrics_port(), 0);
  const json j =
      run_fluxbench(target(baseline.port()) +
                    std::vector<std::string>{"--conns", "50", "--window", "4", "--warmup", "500ms",
                                             "--duration", "1500ms", "--size", "200"});
  expect_clean(j, 50);
  expect_ordered_percentiles(j["latency_us"]);
}

TEST(FluxbenchFailures, RefusedConnectionsAreCountedNotFatal) {
  // Find a port nobody listens on: start a baseline, note its port, stop it.
  uint16_t port = 0;
  {
    GatewayProcess gone;
    ASSERT_TRUE(
        gone.start_command({binary("FLUX_BASELINE_BIN", FLUX_BASELINE_BIN), "--port", "0"}));
    port = gone.port();
  }
  const json j =
      run_fluxbench(target(port) + std::vector<std::string>{"--conns", "5", "--duration", "200ms"},
                    /*expected_exit=*/3);
  EXPECT_EQ(j["result"], "no-connections");
  EXPECT_EQ(j["connections"]["connect_failed"], 5);
  EXPECT_EQ(j["errors"], 0);
}

TEST(FluxbenchFailures, RefusesNonLoopbackTargets) {
  const RunResult r =
      run({fluxbench(), "--host", "10.1.2.3", "--duration", "1s"}, after(seconds(5)));
  EXPECT_EQ(exit_code(r).value_or(-1), 2);
}

}  // namespace
}  // namespace flux::itest
