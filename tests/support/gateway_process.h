#pragma once

// GatewayProcess: the real flux-gateway binary (FLUX_GATEWAY_BIN) running in
// a child process, as a user or a script would start it.
//
//   test process                         child: flux-gateway
//   ------------                         -------------------
//   start() -- spawn (subprocess.h) ---> --port 0 --metrics-port 0 <args>
//   stdout reader thread  <--- pipe ---  "listening port=<p> metrics_port=<m>\n"
//   stderr_text()         <--- file ---  log lines (a file, never a pipe: a
//                                        chatty gateway must not block on a
//                                        pipe nobody reads)
//   signal(), wait_exit() ---- pid ----
//
// The child starts with exactly stdin (/dev/null), stdout (pipe) and stderr
// (file): spawn() closes every other descriptor.
//
// start_command() runs another binary that prints the same listening line
// (the gateway from elsewhere, flux-echo-baseline) under the same contract.
//
// Thread contract: a GatewayProcess is used by the test thread only; its
// stdout reader thread is internal. The destructor SIGKILLs and reaps a child
// that is still running, fails the test if the gateway's stderr holds a
// sanitizer report, and prints that stderr when the current test has failed,
// so a failure always comes with the server's side of it.

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/deadline.h"
#include "support/subprocess.h"

namespace flux::itest {

// Runs FLUX_GATEWAY_BIN with exactly `args` (no --port added) until it exits,
// collecting stdout and stderr; SIGKILLs it at `deadline`.
RunResult run_gateway(const std::vector<std::string>& args, Deadline deadline);

// Resident memory of `pid` in bytes (VmRSS in /proc/<pid>/status).
std::optional<uint64_t> resident_bytes(pid_t pid);

// Peak resident memory of `pid` in bytes (VmHWM): catches a spike between
// two samples.
std::optional<uint64_t> peak_resident_bytes(pid_t pid);

// User + system CPU time `pid` has used (utime + stime in /proc/<pid>/stat).
std::optional<std::chrono::milliseconds> cpu_time(pid_t pid);

// Raises this process's soft RLIMIT_NOFILE to at least `wanted` if the hard
// limit allows; returns the soft limit now in force. Children inherit it.
rlim_t raise_open_file_limit(rlim_t wanted);

class GatewayProcess {
 public:
  GatewayProcess() = default;
  ~GatewayProcess();
  GatewayProcess(const GatewayProcess&) = delete;
  GatewayProcess& operator=(const GatewayProcess&) = delete;

  // Starts `FLUX_GATEWAY_BIN --port 0 --metrics-port 0 <extra_args>` and waits
  // up to 10 s for its listening line. With `max_open_files`, the child's
  // RLIMIT_NOFILE (soft and hard, so the gateway cannot raise it back) is set
  // to that before exec. Call once; use as ASSERT_TRUE(gw.start(...)).
  [[nodiscard]] ::testing::AssertionResult start(
      const std::vector<std::string>& extra_args = {},
      std::optional<rlim_t> max_open_files = std::nullopt);

  // Starts exactly `argv` (argv[0] the binary: nothing added, FLUX_TEST_REACTORS
  // not read) and waits up to 10 s for its listening line. Call once, instead
  // of start().
  [[nodiscard]] ::testing::AssertionResult start_command(const std::vector<std::string>& argv);

  // The gateway's client port and metrics port, as it printed them.
  uint16_t port() const { return port_; }
  uint16_t metrics_port() const { return metrics_port_; }
  pid_t pid() const { return pid_; }

  // Everything the gateway wrote to stdout so far (normally just the
  // listening line).
  std::string stdout_text() const;

  // Everything the gateway wrote to stderr so far.
  std::string stderr_text() const;

  // Sends `sig` to the gateway if it has not been reaped yet.
  void signal(int sig);

  // Waits for the gateway to exit, up to `deadline`, and reaps it. nullopt if
  // it is still running at the deadline. Once reaped, returns the same status.
  std::optional<ExitStatus> wait_exit(Deadline deadline);

  // The end of a test that requires a clean shutdown: the gateway must still
  // be running (it did not die during the test), then exit with status 0
  // within `wait` of SIGTERM (a sanitizer report inside a sanitized gateway
  // makes the status non-zero). A failure names the status and, past the
  // SIGTERM, the gateway's stderr. Use as EXPECT_TRUE(gw.stop_cleanly()).
  [[nodiscard]] ::testing::AssertionResult stop_cleanly(
      std::chrono::seconds wait = std::chrono::seconds(10));

  // True while the gateway has not exited (never waits).
  bool running();

  // "running", or how it ended, for failure messages (never waits).
  std::string status_text();

 private:
  ::testing::AssertionResult spawn_server(const std::vector<std::string>& argv,
                                          std::optional<rlim_t> max_open_files);
  ::testing::AssertionResult await_listening_line(Deadline deadline);
  void read_stdout(int fd);
  bool try_reap();
  void kill_and_reap();

  pid_t pid_ = -1;
  std::optional<ExitStatus> exit_status_;
  int stderr_fd_ = -1;  // our handle on the (unlinked) stderr file
  uint16_t port_ = 0;
  uint16_t metrics_port_ = 0;

  // Shared with the stdout reader thread.
  mutable std::mutex mu_;
  std::condition_variable stdout_changed_;
  std::string stdout_;
  bool stdout_closed_ = false;
  std::atomic<bool> stop_reader_{false};
  std::thread stdout_reader_;
};

}  // namespace flux::itest
