// What an operator sees of a running gateway besides its metrics: thread
// names (top -H, ps -L, /stats), --version, and JSON log lines.

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/gateway_process.h"
#include "support/metrics_http.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// What the kernel says the thread is called (what top -H and ps -L show).
std::string kernel_thread_name(pid_t pid, uint64_t tid) {
  std::ifstream comm("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(comm, name);
  return name;
}

TEST(Operability, ThreadsAreNamedAndListedInStats) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--reactors", "2"}));
  // Each thread names itself as it starts, which may be just after the
  // listening line: wait (bounded) until every name is there.
  const std::vector<std::string> kNamed = {"flux-reactor-0", "flux-reactor-1", "flux-sampler",
                                           "flux-http-io", "flux-http-0"};
  auto all_named = [&](const json& threads) {
    const std::string listed = threads.dump();
    for (const std::string& name : kNamed)
      if (listed.find('"' + name + '"') == std::string::npos) return false;
    return true;
  };
  std::optional<json> stats;
  const auto deadline = after(seconds(5));
  do {
    stats = MetricsHttp(gateway.metrics_port()).get_json("/stats");
    ASSERT_TRUE(stats && !stats->is_discarded());
    ASSERT_TRUE((*stats)["threads"].is_array()) << stats->dump();
  } while (!all_named((*stats)["threads"]) && Clock::now() < deadline);
  std::multiset<std::string> names;
  for (const json& thread : (*stats)["threads"]) {
    const auto tid = thread["tid"].get<uint64_t>();
    const auto name = thread["name"].get<std::string>();
    names.insert(name);
    EXPECT_EQ(kernel_thread_name(gateway.pid(), tid), name) << "tid " << tid;
  }
  for (const std::string& wanted : kNamed)
    EXPECT_EQ(names.count(wanted), 1u) << wanted << " in " << (*stats)["threads"].dump();
    // The main thread keeps the program's name. A sanitizer runtime may add a
    // background thread of its own (ThreadSanitizer does), which has it too.
#ifdef FLUX_SANITIZED
  EXPECT_GE(names.count("flux-gateway"), 1u) << (*stats)["threads"].dump();
  EXPECT_LE(names.count("flux-gateway"), 2u) << (*stats)["threads"].dump();
#else
  EXPECT_EQ(names.count("flux-gateway"), 1u) << (*stats)["threads"].dump();
#endif
  // Every thread of the process is listed (the threads all start before the
  // listening line, so /proc/<pid>/task holds the same set now).
  size_t tasks = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(gateway.pid()) + "/task")) {
    (void)entry;
    ++tasks;
  }
  EXPECT_EQ(names.size(), tasks) << (*stats)["threads"].dump();
}

TEST(Operability, VersionNamesTheRevisionAndBuildType) {
  RunResult run = run_gateway({"--version"}, after(seconds(10)));
  ASSERT_TRUE(run.status && run.status->success()) << run.err;
  EXPECT_EQ(run.out.rfind("flux-gateway 0.", 0), 0u) << run.out;
  EXPECT_NE(run.out.find("(git "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find(" build)"), std::string::npos) << run.out;
  EXPECT_TRUE(run.err.empty()) << run.err;
}

TEST(Operability, JsonLogLinesAreOneObjectEachWithTheSameEvents) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--log-format", "json"}));
  gateway.signal(SIGTERM);
  const auto status = gateway.wait_exit(after(seconds(15)));
  ASSERT_TRUE(status && status->success()) << gateway.status_text();
  std::istringstream lines(gateway.stderr_text());
  std::map<std::string, json> by_event;
  for (std::string line; std::getline(lines, line);) {
    json object = json::parse(line, nullptr, false);
    ASSERT_FALSE(object.is_discarded()) << "not one JSON object: " << line;
    for (const char* key : {"time", "level", "event", "message"})
      EXPECT_TRUE(object.contains(key)) << key << " missing: " << line;
    EXPECT_EQ(object["time"].get<std::string>().back(), 'Z') << line;
    by_event[object["event"].get<std::string>()] = object;
  }
  for (const char* event :
       {"listening", "shutdown-requested", "shutdown-begin", "shutdown-complete"})
    EXPECT_TRUE(by_event.count(event)) << event << " not logged:\n" << gateway.stderr_text();
  if (by_event.count("listening")) {
    const json& listening = by_event["listening"];
    EXPECT_EQ(listening["port"].get<uint64_t>(), gateway.port());
    EXPECT_EQ(listening["metrics_port"].get<uint64_t>(), gateway.metrics_port());
    EXPECT_EQ(listening["level"], "info");
  }
  if (by_event.count("shutdown-requested")) {
    EXPECT_EQ(by_event["shutdown-requested"]["signal"], "SIGTERM");
  }
}

// Rolling restarts: on SIGTERM /healthz answers 503 "draining" at once (the
// balancer's health check takes the node out), while the connections still
// drain as docs/protocol.md section 5 says.
TEST(Operability, HealthzSaysDrainingAsSoonAsSigtermArrives) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--linger", "3s"}));
  TestClient lingering;  // reads nothing and never closes: the drain waits for linger
  ASSERT_TRUE(lingering.connect(gateway.port()));
  ASSERT_TRUE(lingering.handshake());
  MetricsHttp http(gateway.metrics_port(), seconds(2));
  auto before = http.get("/healthz");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 200) << before->body;

  gateway.signal(SIGTERM);
  const auto deadline = after(seconds(2));
  int status = 0;
  std::string body;
  do {  // the signal is taken by another thread: poll until it has been
    auto during = http.get("/healthz");
    status = during ? during->status : -1;
    body = during ? during->body : httplib::to_string(during.error());
  } while (status != 503 && Clock::now() < deadline);
  EXPECT_EQ(status, 503) << body;
  EXPECT_EQ(body, "draining\n");
  EXPECT_TRUE(lingering.expect_frame("FLUX_ERROR server-shutdown"));
  EXPECT_TRUE(gateway.running()) << "still draining: the 503 came first";
  const auto exit_status = gateway.wait_exit(after(seconds(15)));
  ASSERT_TRUE(exit_status && exit_status->success()) << gateway.status_text();
}

}  // namespace
}  // namespace flux::itest
