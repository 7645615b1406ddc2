#pragma once

// Child processes for the fluxbench smoke test: a server (flux-gateway or
// flux-echo-baseline) that prints "listening port=<p> metrics_port=<m>",
// and a command run to completion with its stdout collected. Every wait is
// bounded by a deadline; a child still running at the end is killed.
//
// Thread contract: the test thread only.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flux::benchtest {

using Clock = std::chrono::steady_clock;

struct CommandResult {
  std::optional<int> exit_code;  // nullopt: killed at the deadline or by a signal
  std::string out;
};

// Runs `argv` (argv[0] is the binary path) until it exits or `timeout`
// passes; stderr goes to this process's stderr.
CommandResult run_command(const std::vector<std::string>& argv, Clock::duration timeout);

class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts `argv` and waits up to 10 s for its listening line; false (with
  // `error` set) if it never came.
  bool start(const std::vector<std::string>& argv, std::string& error);

  // SIGTERM, then waits up to `timeout` for the exit: its status, or nullopt
  // if it died by a signal or was still running (then it is killed).
  std::optional<int> stop(Clock::duration timeout);

  uint16_t port() const { return port_; }
  uint16_t metrics_port() const { return metrics_port_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  uint16_t port_ = 0;
  uint16_t metrics_port_ = 0;
};

}  // namespace flux::benchtest
