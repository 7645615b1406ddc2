// The real flux-gateway as systemd runs a Type=notify service: a child
// process with NOTIFY_SOCKET pointing at a test datagram socket, a 200 ms
// watchdog (WATCHDOG_USEC) and WATCHDOG_PID naming the gateway itself (set
// by a shell that then execs the gateway, so the pid is the gateway's).
//
//   READY=1     only once the listening line is out and both ports accept
//   WATCHDOG=1  every 100 ms (half of WATCHDOG_USEC) while it serves
//   STOPPING=1  when SIGTERM starts the drain; then exit 0

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "packaging/notify_socket.h"
#include "support/subprocess.h"

#ifndef FLUX_GATEWAY_BIN
#error "FLUX_GATEWAY_BIN must name the flux-gateway binary (set by tests/CMakeLists.txt)"
#endif

extern char** environ;

namespace {

using namespace std::chrono_literals;
using flux::ptest::Clock;
using flux::ptest::Notification;
using flux::ptest::NotifySocket;

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// The gateway under a service manager's environment; SIGKILLed and reaped
// on scope exit if still running.
class NotifiedGateway {
 public:
  explicit NotifiedGateway(const std::string& notify_socket) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    stdout_fd_ = out[0];
    stderr_fd_ = flux::itest::unlinked_temp_file("flux-notify-stderr");
    flux::itest::ChildSpec spec;
    // $$ is the shell's pid, which exec hands on to the gateway.
    spec.argv = {
        "/bin/sh",        "-c",     "WATCHDOG_PID=$$; export WATCHDOG_PID; exec \"$0\" \"$@\"",
        FLUX_GATEWAY_BIN, "--port", "0",
        "--metrics-port", "0"};
    spec.env = environment(notify_socket);
    spec.stdout_fd = out[1];
    spec.stderr_fd = stderr_fd_;
    pid_ = flux::itest::spawn(spec);
    const int spawn_errno = errno;
    ::close(out[1]);
    if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + strerror(spawn_errno));
  }
  ~NotifiedGateway() {
    if (!exit_) flux::itest::kill_and_wait(pid_);
    if (::testing::Test::HasFailure())
      fprintf(stderr, "gateway stderr:\n%s", stderr_text().c_str());
    ::close(stdout_fd_);
    if (stderr_fd_ >= 0) ::close(stderr_fd_);
  }
  NotifiedGateway(const NotifiedGateway&) = delete;
  NotifiedGateway& operator=(const NotifiedGateway&) = delete;

  pid_t pid() const { return pid_; }

  // True when stdout has bytes to read right now (no waiting).
  bool stdout_readable_now() const {
    pollfd p{stdout_fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }

  // The first stdout line, or nullopt at `deadline`.
  std::optional<std::string> read_line(Clock::time_point deadline) {
    while (stdout_.find('\n') == std::string::npos) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{stdout_fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        return std::nullopt;
      char buf[512];
      const ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      stdout_.append(buf, static_cast<size_t>(n));
    }
    return stdout_.substr(0, stdout_.find('\n'));
  }

  // How the gateway ended, or nullopt if it is still running at `deadline`.
  std::optional<flux::itest::ExitStatus> wait_exit(Clock::time_point deadline) {
    if (!exit_) exit_ = flux::itest::wait_exit(pid_, deadline);
    return exit_;
  }

  std::string stderr_text() const {
    return stderr_fd_ < 0 ? std::string() : flux::itest::read_whole_fd(stderr_fd_);
  }

 private:
  static std::vector<std::string> environment(const std::string& notify_socket) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      const std::string_view entry(*e);
      if (entry.starts_with("NOTIFY_SOCKET=") || entry.starts_with("WATCHDOG_")) continue;
      env.emplace_back(entry);
    }
    env.push_back("NOTIFY_SOCKET=" + notify_socket);
    env.push_back("WATCHDOG_USEC=200000");
    return env;
  }

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;  // an unlinked file
  std::string stdout_;
  std::optional<flux::itest::ExitStatus> exit_;
};

bool accepts_connections(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

TEST(SystemdNotify, ReadyAfterBindingThenWatchdogThenStoppingOnSigterm) {
  NotifySocket manager;
  NotifiedGateway gateway(manager.path());
  const auto spawned = Clock::now();
  std::vector<Notification> seen;

  // READY=1 comes first, and by then the listening line is already written.
  auto ready = manager.receive(Clock::now() + 20s);
  ASSERT_TRUE(ready) << "no notification within 20 s";
  ASSERT_TRUE(ready->has("READY=1")) << "first notification: " << ready->text;
  EXPECT_TRUE(gateway.stdout_readable_now()) << "READY=1 before the listening line";
  const auto line = gateway.read_line(Clock::now() + 5s);
  ASSERT_TRUE(line);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(*line, m, std::regex(R"(listening port=(\d+) metrics_port=(\d+))")))
      << *line;
  const auto port = static_cast<uint16_t>(std::stoi(m[1])),
             metrics_port = static_cast<uint16_t>(std::stoi(m[2]));
  EXPECT_TRUE(accepts_connections(port));
  EXPECT_TRUE(accepts_connections(metrics_port));

  // WATCHDOG=1 at half of WATCHDOG_USEC: about ten in a second.
  std::vector<Clock::time_point> pings;
  const auto window_end = ready->at + 1000ms;
  while (auto n = manager.receive(window_end)) {
    seen.push_back(*n);
    if (n->has("WATCHDOG=1")) pings.push_back(n->at);
  }
  std::vector<double> gaps;
  for (size_t i = 1; i < pings.size(); ++i) gaps.push_back(ms_between(pings[i - 1], pings[i]));
  std::sort(gaps.begin(), gaps.end());
  const double median_gap = gaps.empty() ? 0 : gaps[gaps.size() / 2];
  printf(
      "READY=1 %.0f ms after spawn (\"%s\"); %zu WATCHDOG=1 in the next second, median gap "
      "%.0f ms\n",
      ms_between(spawned, ready->at), ready->text.c_str(), pings.size(), median_gap);
  EXPECT_GE(pings.size(), 5u);
  EXPECT_LE(pings.size(), 12u);
  EXPECT_GT(median_gap, 70.0);
  EXPECT_LT(median_gap, 150.0);

  // SIGTERM: STOPPING=1, then a clean exit.
  const auto term = Clock::now();
  ASSERT_EQ(::kill(gateway.pid(), SIGTERM), 0);
  auto stopping = manager.receive_until("STOPPING=1", Clock::now() + 10s, seen);
  ASSERT_TRUE(stopping) << "no STOPPING=1 within 10 s of SIGTERM";
  const auto status = gateway.wait_exit(Clock::now() + 20s);
  ASSERT_TRUE(status) << "still running 20 s after SIGTERM";
  printf("STOPPING=1 %.0f ms after SIGTERM (\"%s\"); %s\n", ms_between(term, stopping->at),
         stopping->text.c_str(), status->to_string().c_str());
  EXPECT_TRUE(status->success()) << status->to_string();
  EXPECT_EQ(gateway.stderr_text().find("watchdog-withheld"), std::string::npos);
}

}  // namespace
