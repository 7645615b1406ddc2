// The command line (docs/protocol.md section 9 and the gateway's flag list): help,
// errors with exit code 2 that name the flag, both `--flag value` and
// `--flag=value`, and the exact listening line scripts depend on.

#include <gtest/gtest.h>

#include <ostream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/gateway_process.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using std::chrono::seconds;

constexpr int kUsageExitCode = 2;

// The line of `help` whose first word is `flag`, or "" if there is none.
std::string help_line_of(const std::string& help, const std::string& flag) {
  std::istringstream lines(help);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string first;
    if (words >> first && first == flag) return line;
  }
  return {};
}

// Every flag of docs/protocol.md section 9 (and --read-budget) with its default.
TEST(Cli, HelpListsEveryFlagWithItsDefaultAndExitsZero) {
  const RunResult run = run_gateway({"--help"}, after(seconds(5)));
  ASSERT_TRUE(run.status) << "--help did not exit within 5 s";
  EXPECT_TRUE(run.status->success()) << run.status->to_string() << "\nstderr: " << run.err;
  const std::vector<std::pair<std::string, std::string>> defaults = {
      {"--port", "9090"},
      {"--metrics-port", "9100"},
      {"--bind", "127.0.0.1"},
      {"--handshake-timeout", "30s"},
      {"--idle-timeout", "60s"},
      {"--linger", "5s"},
      {"--max-frame", "65536"},
      {"--max-pending", "4194304"},
      {"--max-connections", "100000"},
      {"--replay-frames", "256"},
      {"--replay-bytes", "1048576"},
      {"--replay-memory", "268435456"},
      {"--resume-window", "30s"},
      {"--reactors", "1"},
      {"--read-budget", "16"},
  };
  for (const auto& [flag, value] : defaults) {
    const std::string line = help_line_of(run.out, flag);
    EXPECT_FALSE(line.empty()) << "--help has no line for " << flag;
    EXPECT_NE(line.find(value), std::string::npos)
        << flag << " does not show its default " << value << ": " << line;
  }
}

struct BadCommandLine {
  const char* name;
  std::vector<std::string> args;
  const char* flag;  // what the error message must name
};

void PrintTo(const BadCommandLine& c, std::ostream* os) {
  *os << c.name << ":";
  for (const auto& arg : c.args) *os << " " << arg;
}

class CliBadCommandLineTest : public ::testing::TestWithParam<BadCommandLine> {};

// The bad argument comes after `--port 0 --metrics-port 0`: if the gateway
// wrongly accepted it, it would start on free ports, print its listening line
// and run until killed, instead of colliding with anything.
TEST_P(CliBadCommandLineTest, ExitsTwoNamingTheFlag) {
  std::vector<std::string> args{"--port", "0", "--metrics-port", "0"};
  args.insert(args.end(), GetParam().args.begin(), GetParam().args.end());
  const RunResult run = run_gateway(args, after(seconds(5)));
  ASSERT_TRUE(run.status) << "still running after 5 s; stdout: " << run.out;
  EXPECT_TRUE(run.status->exited && run.status->code == kUsageExitCode)
      << run.status->to_string() << ", expected exit code 2";
  EXPECT_NE(run.err.find(GetParam().flag), std::string::npos)
      << "stderr does not name " << GetParam().flag << ": " << run.err;
  EXPECT_EQ(run.out.find("listening"), std::string::npos) << "it started anyway";
}

INSTANTIATE_TEST_SUITE_P(
    Cli, CliBadCommandLineTest,
    ::testing::Values(
        BadCommandLine{"PortNotANumber", {"--port", "abc"}, "port"},
        BadCommandLine{"PortNotANumberEqualsForm", {"--port=abc"}, "port"},
        BadCommandLine{"DurationBadUnit", {"--idle-timeout", "5parsecs"}, "idle-timeout"},
        BadCommandLine{"ReactorsZero", {"--reactors", "0"}, "reactors"},
        BadCommandLine{"UnknownFlag", {"--nope"}, "nope"},
        BadCommandLine{"MissingValue", {"--max-frame"}, "max-frame"},
        BadCommandLine{"CountWithJunk", {"--max-connections", "12x"}, "max-connections"}),
    [](const auto& test) { return std::string(test.param.name); });

// Scripts read this line: exactly one line, exactly this shape.
TEST(Cli, ListeningLineIsExact) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start());
  const std::string expected_prefix = "listening port=" + std::to_string(gateway.port()) + " ";
  const std::string out = gateway.stdout_text();
  EXPECT_TRUE(std::regex_match(out, std::regex("listening port=[1-9][0-9]* metrics_port=[0-9]+\n")))
      << "stdout: " << describe_payload(out);
  EXPECT_EQ(out.rfind(expected_prefix, 0), 0u);
}

// `--flag=value` is applied: the 1025-byte frame is refused only if
// --max-frame=1024 took effect (the default is 65536). The other flags in
// `=` form must at least parse.
TEST(Cli, EqualsFormIsApplied) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--max-frame=1024", "--idle-timeout=2m", "--linger=0",
                             "--handshake-timeout=250ms", "--reactors=1"}));
  TestClient client;
  ASSERT_TRUE(client.connect(gateway.port()));
  ASSERT_TRUE(client.handshake());
  ASSERT_TRUE(client.send_raw(encode_header(1025)));
  ASSERT_TRUE(client.expect_frame("FLUX_ERROR frame-too-large"));
  EXPECT_TRUE(client.expect_closed());
}

}  // namespace
}  // namespace flux::itest
