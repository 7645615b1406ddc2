#include "integration/gateway_process.h"

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
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

#ifndef FLUX_GATEWAY_BIN
#error "FLUX_GATEWAY_BIN must name the flux-gateway binary (set by tests/CMakeLists.txt)"
#endif

namespace flux::itest {
namespace {

constexpr auto kListenWait = std::chrono::seconds(10);
constexpr size_t kStderrTailBytes = 8 * 1024;

// The options of a child to spawn, all prepared before fork(): between fork
// and exec the child may only make async-signal-safe calls, because another
// thread of the test process may have held malloc's lock at fork time.
struct ChildSpec {
  std::vector<std::string> args;  // argv[1..]
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::optional<rlim_t> max_open_files;
};

[[noreturn]] void exec_child(const ChildSpec& spec, char* const* argv, int devnull) {
  if (spec.max_open_files) {
    const rlimit limit{*spec.max_open_files, *spec.max_open_files};
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(126);
  }
  // dup2 clears close-on-exec on the target, so exactly 0, 1, 2 survive exec.
  ::dup2(devnull, STDIN_FILENO);
  ::dup2(spec.stdout_fd, STDOUT_FILENO);
  ::dup2(spec.stderr_fd, STDERR_FILENO);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGTERM, SIGINT}) ::sigaction(sig, &dfl, nullptr);
  // A test runner killed mid-test must not leave gateways behind.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::execv(FLUX_GATEWAY_BIN, argv);
  ::_exit(127);
}

// Forks and execs FLUX_GATEWAY_BIN; returns the child's pid or -1.
pid_t spawn_child(const ChildSpec& spec) {
  std::vector<std::string> storage;
  storage.push_back(FLUX_GATEWAY_BIN);
  storage.insert(storage.end(), spec.args.begin(), spec.args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid == 0) exec_child(spec, argv.data(), devnull);
  ::close(devnull);
  return pid;
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

// Reaps `pid` if it has exited; never waits.
std::optional<ExitStatus> try_wait(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid) return decode_wait_status(status);
  return std::nullopt;
}

// Waits for `pid` to exit until `deadline`. A pidfd becomes readable when the
// process exits, so the wait is a poll, not a sleep loop; kernels without
// pidfd_open (< 5.3) fall back to checking every few milliseconds.
std::optional<ExitStatus> wait_child(pid_t pid, Deadline deadline) {
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

// A file for the child's stderr: unlinked at once, so nothing is left behind
// however the test ends; we keep a descriptor to read it back with pread.
int make_stderr_file() {
  const char* dir = std::getenv("TMPDIR");
  std::string path =
      std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/flux-gateway-stderr-XXXXXX";
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

std::string tail(const std::string& text, size_t bytes) {
  if (text.size() <= bytes) return text;
  return "[...]" + text.substr(text.size() - bytes);
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

// The marker of a sanitizer report in `text`, or nullptr. A sanitized
// gateway may report a race or a leak and carry on (TSan does by default),
// so the test that provoked it would otherwise pass.
const char* sanitizer_report_in(const std::string& text) {
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                             "WARNING: ThreadSanitizer", "runtime error:"}) {
    if (text.find(marker) != std::string::npos) return marker;
  }
  return nullptr;
}

std::optional<uint64_t> status_field_bytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) != 0) continue;
    std::istringstream values(line.substr(field.size()));
    uint64_t kib = 0;
    if (values >> kib) return kib * 1024;
  }
  return std::nullopt;
}

}  // namespace

std::string ExitStatus::to_string() const {
  if (exited) return "exit code " + std::to_string(code);
  return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
}

RunResult run_gateway(const std::vector<std::string>& args, Deadline deadline) {
  RunResult result;
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return result;
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return result;
  }
  const pid_t pid = spawn_child(ChildSpec{args, out[1], err[1], std::nullopt});
  ::close(out[1]);
  ::close(err[1]);
  if (pid > 0) {
    const bool drained = drain_pipes(out[0], err[0], result, deadline);
    result.status = drained ? wait_child(pid, deadline) : std::nullopt;
    if (!result.status) kill_and_wait(pid);
  }
  ::close(out[0]);
  ::close(err[0]);
  return result;
}

std::optional<uint64_t> resident_bytes(pid_t pid) {
  return status_field_bytes(pid, "VmRSS:");
}

std::optional<uint64_t> peak_resident_bytes(pid_t pid) {
  return status_field_bytes(pid, "VmHWM:");
}

std::optional<std::chrono::milliseconds> cpu_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may contain spaces;
  // fields are counted from the last ')'. Field 3 is the state, 14 utime,
  // 15 stime, both in clock ticks.
  const auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close_paren + 1));
  std::string skip;
  for (int field = 3; field < 14; ++field) fields >> skip;
  uint64_t utime = 0;
  uint64_t stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  const auto ticks_per_second = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
  return std::chrono::milliseconds((utime + stime) * 1000 / ticks_per_second);
}

rlim_t raise_open_file_limit(rlim_t wanted) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur >= wanted) return limit.rlim_cur;
  limit.rlim_cur = std::min(wanted, limit.rlim_max);
  ::setrlimit(RLIMIT_NOFILE, &limit);
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

GatewayProcess::~GatewayProcess() {
  // Taken before the kill: whether the gateway had died on its own (a crash,
  // a sanitizer abort) is often the whole story of a failed test.
  const std::string status = status_text();
  if (pid_ > 0 && !exit_status_) kill_and_reap();
  stop_reader_ = true;
  if (stdout_reader_.joinable()) stdout_reader_.join();
  if (const char* report = sanitizer_report_in(stderr_text())) {
    ADD_FAILURE() << "the gateway's stderr holds a sanitizer report (" << report << ")";
  }
  if (::testing::Test::HasFailure() && stderr_fd_ >= 0) {
    std::cerr << "---- flux-gateway stderr (pid " << pid_ << ", " << status << ") ----\n"
              << tail(stderr_text(), kStderrTailBytes) << "---- end of gateway stderr ----\n";
  }
  if (stderr_fd_ >= 0) ::close(stderr_fd_);
}

::testing::AssertionResult GatewayProcess::start(const std::vector<std::string>& extra_args,
                                                 std::optional<rlim_t> max_open_files) {
  if (pid_ > 0) return ::testing::AssertionFailure() << "GatewayProcess::start called twice";
  std::vector<std::string> args{"--port", "0", "--metrics-port", "0"};
  // CTest runs the integration suites twice: as they are, and with
  // FLUX_TEST_REACTORS=4 (a test's own --reactors, later on the line, wins).
  if (const char* reactors = std::getenv("FLUX_TEST_REACTORS"); reactors && *reactors)
    args.insert(args.end(), {"--reactors", reactors});
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  if (auto spawned = spawn(args, max_open_files); !spawned) return spawned;
  return await_listening_line(after(kListenWait));
}

::testing::AssertionResult GatewayProcess::spawn(const std::vector<std::string>& args,
                                                 std::optional<rlim_t> max_open_files) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return ::testing::AssertionFailure() << "pipe2: " << std::strerror(errno);
  }
  stderr_fd_ = make_stderr_file();
  if (stderr_fd_ < 0) {
    return ::testing::AssertionFailure() << "stderr file: " << std::strerror(errno);
  }
  pid_ = spawn_child(ChildSpec{args, out[1], stderr_fd_, max_open_files});
  ::close(out[1]);
  if (pid_ < 0) {
    ::close(out[0]);
    return ::testing::AssertionFailure() << "fork: " << std::strerror(errno);
  }
  stdout_reader_ = std::thread([this, fd = out[0]] { read_stdout(fd); });
  return ::testing::AssertionSuccess();
}

void GatewayProcess::read_stdout(int fd) {
  std::array<char, 4096> buf;
  // Polls with a short timeout so the destructor can stop this thread even
  // if something kept the pipe's write end open.
  while (!stop_reader_) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 100) <= 0) continue;
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard lock(mu_);
    stdout_.append(buf.data(), static_cast<size_t>(n));
    stdout_changed_.notify_all();
  }
  ::close(fd);
  std::lock_guard lock(mu_);
  stdout_closed_ = true;
  stdout_changed_.notify_all();
}

::testing::AssertionResult GatewayProcess::await_listening_line(Deadline deadline) {
  static const std::regex kLine(R"(listening port=([0-9]+) metrics_port=([0-9]+))");
  std::smatch match;
  std::string line_seen;
  auto found = [&] {
    std::istringstream lines(stdout_);
    std::string line;
    // Only complete lines: a half-written line must not be parsed early.
    while (std::getline(lines, line) && !lines.eof()) {
      if (std::regex_match(line, kLine)) {
        line_seen = line;
        return true;
      }
    }
    return stdout_closed_;
  };
  std::unique_lock lock(mu_);
  stdout_changed_.wait_until(lock, deadline, found);
  if (line_seen.empty()) {
    const std::string out = stdout_;
    const bool closed = stdout_closed_;
    lock.unlock();
    auto failure = ::testing::AssertionFailure();
    failure << (closed ? "gateway closed stdout before printing" : "gateway did not print")
            << " `listening port=<p> metrics_port=<m>` within 10 s";
    if (auto status = wait_exit(after(std::chrono::milliseconds(200)))) {
      failure << "; it ended with " << status->to_string();
    }
    return failure << "\nstdout: " << out << "\nstderr: " << tail(stderr_text(), 4096);
  }
  std::regex_match(line_seen, match, kLine);
  port_ = static_cast<uint16_t>(std::stoul(match[1].str()));
  metrics_port_ = static_cast<uint16_t>(std::stoul(match[2].str()));
  if (port_ == 0) return ::testing::AssertionFailure() << "gateway printed port=0";
  return ::testing::AssertionSuccess();
}

std::string GatewayProcess::stdout_text() const {
  std::lock_guard lock(mu_);
  return stdout_;
}

std::string GatewayProcess::stderr_text() const {
  return stderr_fd_ < 0 ? std::string() : read_whole_fd(stderr_fd_);
}

void GatewayProcess::signal(int sig) {
  if (pid_ > 0 && !exit_status_) ::kill(pid_, sig);
}

std::optional<ExitStatus> GatewayProcess::wait_exit(Deadline deadline) {
  if (!exit_status_ && pid_ > 0) exit_status_ = wait_child(pid_, deadline);
  return exit_status_;
}

bool GatewayProcess::running() {
  return pid_ > 0 && !try_reap();
}

std::string GatewayProcess::status_text() {
  if (pid_ <= 0) return "not started";
  return try_reap() ? exit_status_->to_string() : "running";
}

bool GatewayProcess::try_reap() {
  if (!exit_status_) exit_status_ = try_wait(pid_);
  return exit_status_.has_value();
}

void GatewayProcess::kill_and_reap() {
  exit_status_ = kill_and_wait(pid_);
}

}  // namespace flux::itest
