#pragma once

// Child processes for tests: start a binary, wait for it with a deadline,
// kill it, or run it to completion and collect what it printed. The one
// fork + exec of the test tree; GatewayProcess (gateway_process.h), the
// Prometheus tools and the systemd notify test all start their children here.
//
//   spawn(spec)           fork; the child sets its limits, stdio and signals,
//                         then execs spec.argv[0] (or _exit(127))
//   try_wait(pid)         reaped?                      (never blocks)
//   wait_exit(pid, d)     reaped by the deadline d?    (a pidfd poll, no sleep loop)
//   kill_and_wait(pid)    SIGKILL, then reap
//   terminate(pid, d)     SIGTERM; SIGKILL if still running at d
//   run(argv, d)          spawn, read stdout and stderr to EOF, reap; SIGKILL at d
//
// The child starts with exactly stdin, stdout and stderr: every other
// descriptor is closed before exec, whether or not it was close-on-exec. It
// gets SIGKILL if the test process dies (PR_SET_PDEATHSIG), an empty signal
// mask and default SIGPIPE, SIGTERM and SIGINT. Everything the child needs is
// prepared before fork(): between fork and exec it makes async-signal-safe
// calls only, since another thread may have held malloc's lock at fork time.
//
// Thread contract: any thread; a pid is waited for by one thread at a time.

#include <sys/resource.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "support/deadline.h"

namespace flux::itest {

// How a child process ended.
struct ExitStatus {
  bool exited = false;  // true: exit(code); false: killed by `signal`
  int code = 0;
  int signal = 0;

  bool success() const { return exited && code == 0; }
  std::string to_string() const;
};

// What to start.
struct ChildSpec {
  std::vector<std::string> argv;                // argv[0] is the path of the binary
  std::optional<std::vector<std::string>> env;  // "NAME=value" each; nullopt: this process's
  int stdin_fd = -1;                            // -1: /dev/null
  int stdout_fd = -1;                           // -1: this process's stdout
  int stderr_fd = -1;                           // -1: this process's stderr
  // RLIMIT_NOFILE of the child, soft and hard (so it cannot raise it back).
  std::optional<rlim_t> max_open_files;
};

// Forks and execs `spec`; the child's pid, or -1 (errno set) if fork failed.
// A binary that cannot be executed shows as exit code 127 (126 if the
// rlimit could not be set).
pid_t spawn(const ChildSpec& spec);

// Reaps `pid` if it has exited; never waits.
std::optional<ExitStatus> try_wait(pid_t pid);

// Waits for `pid` to exit until `deadline` and reaps it; nullopt if it is
// still running then.
std::optional<ExitStatus> wait_exit(pid_t pid, Deadline deadline);

// SIGKILLs `pid` and reaps it.
ExitStatus kill_and_wait(pid_t pid);

// SIGTERM, then waits until `deadline`; still running then: SIGKILL. Returns
// how it ended when it ended by itself, nullopt when it had to be killed.
std::optional<ExitStatus> terminate(pid_t pid, Deadline deadline);

// Everything a short-lived child produced.
struct RunResult {
  std::optional<ExitStatus> status;  // nullopt: still running at the deadline (then killed)
  std::string out;                   // all of stdout
  std::string err;                   // all of stderr
};

// Runs `argv` (stdin /dev/null) until it exits, collecting stdout and
// stderr; SIGKILLs it at `deadline`.
RunResult run(const std::vector<std::string>& argv, Deadline deadline);

// A temporary file, already unlinked (nothing is left behind however the test
// ends), open read-write and close-on-exec; -1 on failure. For a child's
// stderr: a file, unlike a pipe, never blocks a chatty child nobody reads.
int unlinked_temp_file(const std::string& name_prefix);

// The whole content of the file open on `fd` (read with pread, from 0).
std::string read_whole_fd(int fd);

}  // namespace flux::itest
