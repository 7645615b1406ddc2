#include "support/gateway_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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

std::string tail(const std::string& text, size_t bytes) {
  if (text.size() <= bytes) return text;
  return "[...]" + text.substr(text.size() - bytes);
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

RunResult run_gateway(const std::vector<std::string>& args, Deadline deadline) {
  std::vector<std::string> argv{FLUX_GATEWAY_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, deadline);
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
  std::vector<std::string> argv{FLUX_GATEWAY_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  if (auto spawned = spawn_server(argv, max_open_files); !spawned) return spawned;
  return await_listening_line(after(kListenWait));
}

::testing::AssertionResult GatewayProcess::start_command(const std::vector<std::string>& argv) {
  if (pid_ > 0) return ::testing::AssertionFailure() << "GatewayProcess::start called twice";
  if (auto spawned = spawn_server(argv, std::nullopt); !spawned) return spawned;
  return await_listening_line(after(kListenWait));
}

::testing::AssertionResult GatewayProcess::spawn_server(const std::vector<std::string>& argv,
                                                        std::optional<rlim_t> max_open_files) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return ::testing::AssertionFailure() << "pipe2: " << std::strerror(errno);
  }
  stderr_fd_ = unlinked_temp_file("flux-gateway-stderr");
  if (stderr_fd_ < 0) {
    return ::testing::AssertionFailure() << "stderr file: " << std::strerror(errno);
  }
  ChildSpec spec;
  spec.argv = argv;
  spec.stdout_fd = out[1];
  spec.stderr_fd = stderr_fd_;
  spec.max_open_files = max_open_files;
  pid_ = spawn(spec);
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
  if (!exit_status_ && pid_ > 0) exit_status_ = itest::wait_exit(pid_, deadline);
  return exit_status_;
}

::testing::AssertionResult GatewayProcess::stop_cleanly(std::chrono::seconds wait) {
  if (!running())
    return ::testing::AssertionFailure() << "the gateway died during the test: " << status_text();
  signal(SIGTERM);
  const std::optional<ExitStatus> status = wait_exit(after(wait));
  if (!status)
    return ::testing::AssertionFailure() << "no exit " << wait.count() << " s after SIGTERM";
  if (!status->success())
    return ::testing::AssertionFailure() << "gateway " << status->to_string() << "\n"
                                         << stderr_text();
  return ::testing::AssertionSuccess();
}

bool GatewayProcess::running() {
  return pid_ > 0 && !try_reap();
}

std::string GatewayProcess::status_text() {
  if (pid_ <= 0) return "not started";
  return try_reap() ? exit_status_->to_string() : "running";
}

bool GatewayProcess::try_reap() {
  if (!exit_status_) exit_status_ = itest::try_wait(pid_);
  return exit_status_.has_value();
}

void GatewayProcess::kill_and_reap() {
  exit_status_ = itest::kill_and_wait(pid_);
}

}  // namespace flux::itest
