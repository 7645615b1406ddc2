// The /metrics exposition as the Prometheus tools see it:
//   1. `promtool check metrics` accepts a real scrape body (format and lint);
//   2. a real Prometheus server scrapes the gateway, reports it up, and
//      returns through PromQL the ready-connection gauge the test holds.
//
// Both tools come from Debian's `prometheus` package (scripts/setup.sh
// --test). A missing tool is a failure, not a skip: a skipped check is a
// check that silently stopped running.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/gateway_process.h"
#include "support/metrics_http.h"
#include "support/subprocess.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kPromtool = "/usr/bin/promtool";
constexpr const char* kPrometheus = "/usr/bin/prometheus";
constexpr seconds kPrometheusDeadline{60};
constexpr seconds kExitWait{10};

// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "flux-prom-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  bool ok() const { return !path_.empty(); }

 private:
  fs::path path_;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A loopback port nobody listens on right now (bind 0, read it, close).
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// Runs `argv` with stdin from `input` and stdout+stderr into `output`;
// how it ended, or nullopt if it could not be opened or was still running at
// `deadline` (then killed).
std::optional<ExitStatus> run_tool(const std::vector<std::string>& argv, const fs::path& input,
                                   const fs::path& output, Deadline deadline) {
  const int in = ::open(input.c_str(), O_RDONLY | O_CLOEXEC);
  const int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  std::optional<ExitStatus> status;
  if (in >= 0 && out >= 0) {
    ChildSpec spec;
    spec.argv = argv;
    spec.stdin_fd = in;
    spec.stdout_fd = out;
    spec.stderr_fd = out;
    if (const pid_t pid = spawn(spec); pid > 0) {
      status = wait_exit(pid, deadline);
      if (!status) kill_and_wait(pid);
    }
  }
  if (in >= 0) ::close(in);
  if (out >= 0) ::close(out);
  return status;
}

// A Prometheus server in a child process, stopped (SIGTERM, then SIGKILL
// after a deadline) and reaped by the destructor.
class PrometheusServer {
 public:
  PrometheusServer() = default;
  ~PrometheusServer() { stop(); }
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  ::testing::AssertionResult start(const fs::path& dir, uint16_t scrape_port) {
    port_ = free_port();
    if (port_ == 0) return ::testing::AssertionFailure() << "no free port for Prometheus";
    log_ = dir / "prometheus.log";
    const fs::path config = dir / "prometheus.yml";
    std::ofstream(config) << "global:\n"
                             "  scrape_interval: 1s\n"
                             "  scrape_timeout: 1s\n"
                             "  evaluation_interval: 1s\n"
                             "scrape_configs:\n"
                             "  - job_name: flux\n"
                             "    static_configs:\n"
                             "      - targets: ['127.0.0.1:"
                          << scrape_port << "']\n";
    const std::vector<std::string> argv = {
        kPrometheus, "--config.file=" + config.string(),
        "--storage.tsdb.path=" + (dir / "data").string(),
        "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"};
    const int out = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) return ::testing::AssertionFailure() << log_ << ": " << strerror(errno);
    ChildSpec spec;
    spec.argv = argv;
    spec.stdout_fd = out;
    spec.stderr_fd = out;
    pid_ = spawn(spec);
    const int spawn_errno = errno;
    ::close(out);
    if (pid_ < 0) return ::testing::AssertionFailure() << "fork: " << strerror(spawn_errno);
    return ::testing::AssertionSuccess();
  }

  uint16_t port() const { return port_; }
  std::string log() const { return read_file(log_); }

  // True while the server has not exited (never waits).
  bool running() {
    if (pid_ <= 0) return false;
    if (try_wait(pid_)) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  // SIGTERM; SIGKILL if it is still running kExitWait later.
  void stop() {
    if (!running()) return;
    terminate(pid_, after(kExitWait));
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  fs::path log_;
};

// The instant-vector result of a PromQL query, or an error text.
struct QueryResult {
  std::vector<std::pair<json, std::string>> samples;  // (labels, value)
  std::string error;
};

QueryResult instant_query(uint16_t port, const std::string& promql) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  QueryResult out;
  auto res = client.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
  if (!res) {
    out.error = "no answer: " + httplib::to_string(res.error());
    return out;
  }
  json body = json::parse(res->body, nullptr, false);
  if (res->status != 200 || body.is_discarded() || body.value("status", "") != "success") {
    out.error = "status " + std::to_string(res->status) + ": " + res->body;
    return out;
  }
  for (const json& r : body["data"]["result"])
    out.samples.emplace_back(r["metric"], r["value"][1].get<std::string>());
  return out;
}

class PrometheusScrapeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(gateway_.start({"--linger", "1s"})); }

  void TearDown() override {
    clients_.clear();
    if (gateway_.pid() < 0) return;  // never started: SetUp said why
    EXPECT_TRUE(gateway_.stop_cleanly(kExitWait));
  }

  // Clients in varied situations, so that many series are non-zero.
  void make_traffic(size_t ready_clients) {
    for (size_t i = 0; i < ready_clients; ++i) {
      clients_.emplace_back();
      TestClient& c = clients_.back();
      ASSERT_TRUE(c.connect(gateway_.port()));
      ASSERT_TRUE(c.handshake());
      for (uint64_t k = 0; k < 20; ++k) {
        const std::string payload = make_payload(k, 10 + k * 50);
        ASSERT_TRUE(c.send_frame(payload));
        ASSERT_TRUE(c.expect_frame(payload));
      }
    }
    TestClient bad;
    ASSERT_TRUE(bad.connect(gateway_.port()));
    ASSERT_TRUE(bad.send_frame("not a hello"));
    ASSERT_TRUE(bad.expect_frame("FLUX_ERROR handshake-expected"));
  }

  std::string scrape() {
    std::string why;
    auto body = MetricsHttp(gateway_.metrics_port()).body("/metrics", &why);
    if (!body) ADD_FAILURE() << why;
    return body.value_or("");
  }

  GatewayProcess gateway_;
  std::deque<TestClient> clients_;  // references stay valid as it grows
};

TEST_F(PrometheusScrapeTest, PromtoolAcceptsARealScrape) {
  ASSERT_TRUE(fs::exists(kPromtool)) << kPromtool << " is missing: run scripts/setup.sh --test";
  ASSERT_NO_FATAL_FAILURE(make_traffic(3));
  const std::string body = scrape();
  ASSERT_FALSE(body.empty());
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  std::ofstream(dir.path() / "scrape.txt") << body;
  auto status = run_tool({kPromtool, "check", "metrics"}, dir.path() / "scrape.txt",
                         dir.path() / "out.txt", after(kPrometheusDeadline));
  ASSERT_TRUE(status) << "could not run " << kPromtool << " (or it did not finish)";
  const std::string output = read_file(dir.path() / "out.txt");
  EXPECT_TRUE(status->success()) << "promtool check metrics: " << status->to_string() << "\n"
                                 << output << "\n--- scrape ---\n"
                                 << body;
  // A lint problem is reported even when the exit status says nothing.
  EXPECT_EQ(output, "") << output;
}

TEST_F(PrometheusScrapeTest, PrometheusServerScrapesTheGateway) {
  ASSERT_TRUE(fs::exists(kPrometheus)) << kPrometheus << " is missing: run scripts/setup.sh --test";
  constexpr size_t kReady = 3;
  ASSERT_NO_FATAL_FAILURE(make_traffic(kReady));
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  PrometheusServer prometheus;
  ASSERT_TRUE(prometheus.start(dir.path(), gateway_.metrics_port()));

  const Deadline deadline = after(kPrometheusDeadline);
  std::string last;  // the last thing seen, for the failure message
  auto wait_for = [&](const std::string& promql, const std::string& want) {
    for (;;) {
      if (!prometheus.running()) {
        last = "prometheus exited";
        return false;
      }
      QueryResult q = instant_query(prometheus.port(), promql);
      if (q.error.empty() && q.samples.size() == 1 && q.samples[0].second == want) return true;
      last = q.error.empty()
                 ? std::to_string(q.samples.size()) + " samples" +
                       (q.samples.empty()
                            ? ""
                            : ", first " + q.samples[0].first.dump() + " = " + q.samples[0].second)
                 : q.error;
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(250));
    }
  };
  EXPECT_TRUE(wait_for(R"(up{job="flux"})", "1"))
      << "up{job=\"flux\"} never 1: " << last << "\n--- prometheus log ---\n"
      << prometheus.log();
  EXPECT_TRUE(wait_for(R"(flux_connections{job="flux",state="ready"})", std::to_string(kReady)))
      << "flux_connections{state=\"ready\"} never " << kReady << ": " << last
      << "\n--- prometheus log ---\n"
      << prometheus.log();
  // A histogram's series arrive too: its _count is the echoes done.
  EXPECT_TRUE(
      wait_for(R"(flux_echo_latency_seconds_count{job="flux"})", std::to_string(kReady * 20)))
      << last;
  QueryResult info = instant_query(prometheus.port(), R"(flux_build_info{job="flux"})");
  ASSERT_TRUE(info.error.empty()) << info.error;
  ASSERT_EQ(info.samples.size(), 1u);
  EXPECT_FALSE(info.samples[0].first.value("version", "").empty()) << info.samples[0].first.dump();
  prometheus.stop();
  EXPECT_FALSE(prometheus.running());
}

}  // namespace
}  // namespace flux::itest
