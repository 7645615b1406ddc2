#include "bench/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <regex>
#include <thread>

namespace flux::benchtest {
namespace {

int ms_until(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// fork + exec with stdout on a pipe; returns the pid, the pipe's read end in `out_fd`.
pid_t spawn(const std::vector<std::string>& args, int& out_fd) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  std::vector<std::string> storage = args;
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  out_fd = pipe_fds[0];
  return pid;
}

// Reads from `fd` into `out` until EOF (true) or the deadline (false).
bool read_until_eof(int fd, std::string& out, Clock::time_point deadline) {
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, ms_until(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    out.append(buf, static_cast<size_t>(n));
  }
}

std::optional<int> reap(pid_t pid, bool kill_first) {
  if (kill_first) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return std::nullopt;
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, Clock::duration timeout) {
  CommandResult result;
  int fd = -1;
  const pid_t pid = spawn(argv, fd);
  if (pid < 0) return result;
  const bool eof = read_until_eof(fd, result.out, Clock::now() + timeout);
  ::close(fd);
  result.exit_code = reap(pid, !eof);
  if (!eof) result.exit_code.reset();
  return result;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    // A gateway drains within its linger bound; do not wait for that here.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    reap(pid_, true);
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

std::optional<int> ServerProcess::stop(Clock::duration timeout) {
  if (pid_ <= 0) return std::nullopt;
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (done == 0) {
    reap(pid_, true);
    pid_ = -1;
    return std::nullopt;
  }
  pid_ = -1;
  if (done > 0 && WIFEXITED(status)) return WEXITSTATUS(status);
  return std::nullopt;
}

bool ServerProcess::start(const std::vector<std::string>& argv, std::string& error) {
  pid_ = spawn(argv, stdout_fd_);
  if (pid_ < 0) {
    error = "cannot start " + argv[0];
    return false;
  }
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  const std::regex line(R"(listening port=(\d+) metrics_port=(\d+)\n)");
  std::string out;
  char buf[256];
  while (Clock::now() < deadline) {
    std::smatch m;
    if (std::regex_search(out, m, line)) {
      port_ = static_cast<uint16_t>(std::stoi(m[1]));
      metrics_port_ = static_cast<uint16_t>(std::stoi(m[2]));
      return true;
    }
    pollfd p{stdout_fd_, POLLIN, 0};
    if (::poll(&p, 1, ms_until(deadline)) <= 0) break;
    const ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  error = argv[0] + " printed no listening line; stdout: " + out;
  return false;
}

}  // namespace flux::benchtest
