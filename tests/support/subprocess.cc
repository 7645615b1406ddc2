#include "support/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace flux::itest {
namespace {

// The child's side of spawn(): async-signal-safe calls only.
[[noreturn]] void exec_child(const ChildSpec& spec, char* const* argv, char* const* envp,
                             int devnull) {
  if (spec.max_open_files) {
    const rlimit limit{*spec.max_open_files, *spec.max_open_files};
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(126);
  }
  // dup2 clears close-on-exec on the target; close_range drops the rest.
  ::dup2(spec.stdin_fd >= 0 ? spec.stdin_fd : devnull, STDIN_FILENO);
  if (spec.stdout_fd >= 0) ::dup2(spec.stdout_fd, STDOUT_FILENO);
  if (spec.stderr_fd >= 0) ::dup2(spec.stderr_fd, STDERR_FILENO);
  ::syscall(SYS_close_range, 3u, ~0u, 0u);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGTERM, SIGINT}) ::sigaction(sig, &dfl, nullptr);
  // A test runner killed mid-test must not leave children behind.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (envp != nullptr) {
    ::execve(argv[0], argv, envp);
  } else {
    ::execv(argv[0], argv);
  }
  ::_exit(127);
}

// A vector of C strings over `strings`, null-terminated, for exec.
std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

ExitStatus decode_wait_status(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) {
    s.exited = true;
    s.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s.signal = WTERMSIG(status);
  }
  return s;
}

// Reads both pipes to EOF or `deadline`; returns false on the deadline.
bool drain_pipes(int out_fd, int err_fd, RunResult& result, Deadline deadline) {
  std::array<pollfd, 2> fds{{{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}}};
  std::array<std::string*, 2> sinks{&result.out, &result.err};
  int open_count = 2;
  std::array<char, 4096> buf;
  while (open_count > 0) {
    const int ready = ::poll(fds.data(), fds.size(), poll_timeout_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf.data(), buf.size());
      if (n > 0) {
        sinks[i]->append(buf.data(), static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;  // poll ignores negative descriptors
        --open_count;
      }
    }
  }
  return true;
}

}  // namespace

std::string ExitStatus::to_string() const {
  if (exited) return "exit code " + std::to_string(code);
  return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
}

pid_t spawn(const ChildSpec& spec) {
  std::vector<std::string> argv_storage = spec.argv;
  std::vector<char*> argv = c_strings(argv_storage);
  std::vector<std::string> env_storage = spec.env.value_or(std::vector<std::string>{});
  std::vector<char*> envp = c_strings(env_storage);
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid == 0) exec_child(spec, argv.data(), spec.env ? envp.data() : nullptr, devnull);
  const int fork_errno = errno;
  ::close(devnull);
  errno = fork_errno;
  return pid;
}

std::optional<ExitStatus> try_wait(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid) return decode_wait_status(status);
  return std::nullopt;
}

// A pidfd becomes readable when the process exits, so the wait is a poll, not
// a sleep loop; kernels without pidfd_open (< 5.3) fall back to checking
// every few milliseconds.
std::optional<ExitStatus> wait_exit(pid_t pid, Deadline deadline) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  for (;;) {
    if (auto status = try_wait(pid)) {
      if (pidfd >= 0) ::close(pidfd);
      return status;
    }
    if (Clock::now() >= deadline) break;
    if (pidfd >= 0) {
      pollfd pfd{pidfd, POLLIN, 0};
      ::poll(&pfd, 1, poll_timeout_ms(deadline));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  return std::nullopt;
}

ExitStatus kill_and_wait(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return decode_wait_status(status);
}

std::optional<ExitStatus> terminate(pid_t pid, Deadline deadline) {
  ::kill(pid, SIGTERM);
  if (auto status = wait_exit(pid, deadline)) return status;
  kill_and_wait(pid);
  return std::nullopt;
}

RunResult run(const std::vector<std::string>& argv, Deadline deadline) {
  RunResult result;
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return result;
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return result;
  }
  ChildSpec spec;
  spec.argv = argv;
  spec.stdout_fd = out[1];
  spec.stderr_fd = err[1];
  const pid_t pid = spawn(spec);
  ::close(out[1]);
  ::close(err[1]);
  if (pid > 0) {
    const bool drained = drain_pipes(out[0], err[0], result, deadline);
    result.status = drained ? wait_exit(pid, deadline) : std::nullopt;
    if (!result.status) kill_and_wait(pid);
  }
  ::close(out[0]);
  ::close(err[0]);
  return result;
}

int unlinked_temp_file(const std::string& name_prefix) {
  const char* dir = std::getenv("TMPDIR");
  std::string path =
      std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/" + name_prefix + "-XXXXXX";
  const int fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd >= 0) ::unlink(path.c_str());
  return fd;
}

std::string read_whole_fd(int fd) {
  std::string out;
  std::array<char, 4096> buf;
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

}  // namespace flux::itest
