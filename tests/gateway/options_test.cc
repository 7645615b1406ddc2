// Command-line options: defaults are the protocol's (docs/protocol.md
// section 9), both spellings parse alike, and every bad value is refused with
// an error that names the flag, so a typo in a test script fails loudly
// instead of running the gateway with a silently different bound.

#include "gateway/options.h"

#include <gtest/gtest.h>

#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace flux {
namespace {

using namespace std::chrono_literals;

ParseOutcome parse(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"flux-gateway"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

// The Options of a successful parse; fails the test otherwise.
Options parsed(const std::vector<std::string>& args) {
  ParseOutcome outcome = parse(args);
  if (auto* error = std::get_if<OptionError>(&outcome))
    ADD_FAILURE() << "unexpected error: " << error->message;
  else if (std::holds_alternative<ShowHelp>(outcome))
    ADD_FAILURE() << "unexpected ShowHelp";
  return std::holds_alternative<Options>(outcome) ? std::get<Options>(outcome) : Options{};
}

// The error message of a failed parse, or "" (and a test failure) if it did not fail.
std::string error_of(const std::vector<std::string>& args) {
  ParseOutcome outcome = parse(args);
  if (auto* error = std::get_if<OptionError>(&outcome)) return error->message;
  std::string joined;
  for (const auto& a : args) joined += a + ' ';
  ADD_FAILURE() << "expected an OptionError for: " << joined;
  return "";
}

// docs/protocol.md's section 9 table (less --stall-threshold, not built yet),
// plus the gateway's own --read-budget and --read-budget-bytes.
struct FlagDefault {
  const char* flag;
  const char* default_text;
};
constexpr FlagDefault kSection9[] = {
    {"port", "9090"},
    {"metrics-port", "9100"},
    {"bind", "127.0.0.1"},
    {"handshake-timeout", "30s"},
    {"idle-timeout", "60s"},
    {"linger", "5s"},
    {"max-frame", "65536"},
    {"max-pending", "4194304"},
    {"max-connections", "100000"},
    {"replay-frames", "256"},
    {"replay-bytes", "1048576"},
    {"replay-memory", "268435456"},
    {"resume-window", "30s"},
    {"reactors", "1"},
    {"read-budget", "16"},
    {"max-pending-total", "536870912"},
    {"write-timeout", "10s"},
    {"read-budget-bytes", "65536"},
    {"log-format", "text"},
    {"node-id", "0"},
    {"proxy-protocol", "off"},
    {"session-store", "memory"},
    {"session-store-timeout", "1s"},
};

bool same(const Options& a, const Options& b) {
  return a.port == b.port && a.metrics_port == b.metrics_port && a.bind == b.bind &&
         a.handshake_timeout == b.handshake_timeout && a.idle_timeout == b.idle_timeout &&
         a.linger == b.linger && a.max_frame == b.max_frame && a.max_pending == b.max_pending &&
         a.max_connections == b.max_connections && a.replay_frames == b.replay_frames &&
         a.replay_bytes == b.replay_bytes && a.replay_memory == b.replay_memory &&
         a.resume_window == b.resume_window && a.reactors == b.reactors &&
         a.read_budget == b.read_budget && a.max_pending_total == b.max_pending_total &&
         a.write_timeout == b.write_timeout && a.read_budget_bytes == b.read_budget_bytes &&
         a.session_store.redis == b.session_store.redis &&
         a.session_store_timeout == b.session_store_timeout;
}

// ----------------------------------------------------------------- defaults

void expect_protocol_defaults(const Options& o) {
  EXPECT_EQ(o.port, 9090);
  EXPECT_EQ(o.metrics_port, 9100);
  EXPECT_EQ(o.bind, "127.0.0.1");
  EXPECT_EQ(o.handshake_timeout, 30s);
  EXPECT_EQ(o.idle_timeout, 60s);
  EXPECT_EQ(o.linger, 5s);
  EXPECT_EQ(o.max_frame, 65536u);
  EXPECT_EQ(o.max_pending, 4194304u);
  EXPECT_EQ(o.max_connections, 100000u);
  EXPECT_EQ(o.replay_frames, 256u);
  EXPECT_EQ(o.replay_bytes, 1048576u);
  EXPECT_EQ(o.replay_memory, 268435456u);
  EXPECT_EQ(o.resume_window, 30s);
  EXPECT_EQ(o.reactors, 1u);
  EXPECT_EQ(o.read_budget, 16u);
  EXPECT_EQ(o.max_pending_total, 536870912u);
  EXPECT_EQ(o.write_timeout, 10s);
  EXPECT_EQ(o.read_budget_bytes, 65536u);
}

TEST(Options, DefaultConstructedMatchesProtocolSection9) {
  expect_protocol_defaults(Options{});
}

TEST(Options, NoArgumentsGiveTheDefaults) {
  expect_protocol_defaults(parsed({}));
}

// ---------------------------------------------------------- both spellings

struct FlagCase {
  const char* flag;
  const char* value;
  std::function<void(const Options&)> check;
};

const std::vector<FlagCase>& every_flag_set() {
  static const std::vector<FlagCase> cases = {
      {"port", "1234", [](const Options& o) { EXPECT_EQ(o.port, 1234); }},
      {"metrics-port", "4321", [](const Options& o) { EXPECT_EQ(o.metrics_port, 4321); }},
      {"bind", "::1", [](const Options& o) { EXPECT_EQ(o.bind, "::1"); }},
      {"handshake-timeout", "250ms",
       [](const Options& o) { EXPECT_EQ(o.handshake_timeout, 250ms); }},
      {"idle-timeout", "2m", [](const Options& o) { EXPECT_EQ(o.idle_timeout, 2min); }},
      {"linger", "1h", [](const Options& o) { EXPECT_EQ(o.linger, 1h); }},
      {"max-frame", "1024", [](const Options& o) { EXPECT_EQ(o.max_frame, 1024u); }},
      {"max-pending", "999", [](const Options& o) { EXPECT_EQ(o.max_pending, 999u); }},
      {"max-connections", "7", [](const Options& o) { EXPECT_EQ(o.max_connections, 7u); }},
      {"replay-frames", "3", [](const Options& o) { EXPECT_EQ(o.replay_frames, 3u); }},
      {"replay-bytes", "4096", [](const Options& o) { EXPECT_EQ(o.replay_bytes, 4096u); }},
      {"replay-memory", "8192", [](const Options& o) { EXPECT_EQ(o.replay_memory, 8192u); }},
      {"resume-window", "45s", [](const Options& o) { EXPECT_EQ(o.resume_window, 45s); }},
      {"reactors", "1", [](const Options& o) { EXPECT_EQ(o.reactors, 1u); }},
      {"read-budget", "4", [](const Options& o) { EXPECT_EQ(o.read_budget, 4u); }},
      {"max-pending-total", "65536",
       [](const Options& o) { EXPECT_EQ(o.max_pending_total, 65536u); }},
      {"write-timeout", "0", [](const Options& o) { EXPECT_EQ(o.write_timeout, 0ms); }},
      {"read-budget-bytes", "1", [](const Options& o) { EXPECT_EQ(o.read_budget_bytes, 1u); }},
  };
  return cases;
}

TEST(Options, EveryFlagParsesInBothSpellings) {
  for (const FlagCase& c : every_flag_set()) {
    SCOPED_TRACE(c.flag);
    const std::string flag = std::string("--") + c.flag;
    Options spaced = parsed({flag, c.value});
    Options joined = parsed({flag + "=" + c.value});
    c.check(spaced);
    c.check(joined);
    EXPECT_TRUE(same(spaced, joined));
  }
}

TEST(Options, AllFlagsOnOneCommandLine) {
  std::vector<std::string> args;
  for (const FlagCase& c : every_flag_set()) {
    // Alternate the spellings so both are exercised next to each other.
    if (args.size() % 3 == 0) {
      args.push_back(std::string("--") + c.flag + "=" + c.value);
    } else {
      args.push_back(std::string("--") + c.flag);
      args.push_back(c.value);
    }
  }
  Options o = parsed(args);
  for (const FlagCase& c : every_flag_set()) {
    SCOPED_TRACE(c.flag);
    c.check(o);
  }
}

TEST(Options, OneFlagLeavesTheOthersAtTheirDefaults) {
  Options o = parsed({"--max-frame", "100"});
  Options expected;
  expected.max_frame = 100;
  EXPECT_TRUE(same(o, expected));
}

TEST(Options, EqualsFormKeepsEverythingAfterTheFirstEquals) {
  EXPECT_EQ(parsed({"--bind=::"}).bind, "::");
  EXPECT_NE(error_of({"--port==80"}).find("--port"), std::string::npos);
}

// ---------------------------------------------------------------- durations

TEST(ParseDuration, AcceptsEveryUnit) {
  const std::pair<const char*, Millis> cases[] = {
      {"250ms", 250ms}, {"30s", 30s}, {"2m", 2min},   {"1h", 1h},     {"0", 0ms},   {"0ms", 0ms},
      {"0s", 0ms},      {"1ms", 1ms}, {"90m", 90min}, {"1000ms", 1s}, {"24h", 24h}, {"86400s", 24h},
  };
  for (const auto& [text, expected] : cases) {
    Millis out{-1};
    EXPECT_TRUE(parse_duration(text, out)) << text;
    EXPECT_EQ(out, expected) << text;
  }
}

TEST(ParseDuration, RejectsMalformedValues) {
  const char* bad[] = {"5",   "5x",    "-1s", "",     "1.5s", "ms",   "s",    " 5s",  "5s ",
                       "5 s", "5S",    "5MS", "+5s",  "5sec", "5ss",  "s5",   "0x5s", "5us",
                       "5ns", "1e3ms", "-0",  "--1s", "5d",   "0.5m", "1h30m"};
  for (const char* text : bad) {
    Millis out{123};
    EXPECT_FALSE(parse_duration(text, out)) << "'" << text << "'";
  }
}

TEST(ParseDuration, RejectsValuesThatOverflow) {
  Millis out{};
  EXPECT_FALSE(parse_duration("99999999999999999999999ms", out)) << "beyond uint64";
  EXPECT_FALSE(parse_duration("18446744073709551615h", out)) << "multiplication overflows";
  EXPECT_FALSE(parse_duration("9223372036854775807s", out)) << "milliseconds overflow int64";
}

TEST(ParseDuration, LargeButRepresentableValuesAreExact) {
  Millis out{};
  ASSERT_TRUE(parse_duration("8760h", out));  // a year
  EXPECT_EQ(out, 8760h);
  EXPECT_GT(out.count(), 0);
}

TEST(Options, DurationFlagsAcceptZero) {
  Options o = parsed({"--idle-timeout", "0", "--linger=0", "--resume-window", "0s"});
  EXPECT_EQ(o.idle_timeout, 0ms);
  EXPECT_EQ(o.linger, 0ms);
  EXPECT_EQ(o.resume_window, 0ms);
}

// A handshake that never times out would let silent sockets pile up forever.
TEST(Options, HandshakeTimeoutMustBePositive) {
  for (const char* zero : {"0", "0ms", "0s"}) {
    const char* argv[] = {"flux-gateway", "--handshake-timeout", zero};
    auto outcome = parse_options(3, argv);
    ASSERT_TRUE(std::holds_alternative<OptionError>(outcome)) << zero;
    EXPECT_NE(std::get<OptionError>(outcome).message.find("--handshake-timeout"),
              std::string::npos);
  }
}

// --------------------------------------------------------------- bad values

struct BadValue {
  const char* flag;
  const char* value;
};

constexpr BadValue kBadValues[] = {
    {"port", "65536"},
    {"port", "-1"},
    {"port", "abc"},
    {"port", ""},
    {"port", "80x"},
    {"port", " 80"},
    {"port", "+80"},
    {"metrics-port", "70000"},
    {"metrics-port", "1.5"},
    {"bind", "localhost"},
    {"bind", "example.com"},
    {"bind", ""},
    {"bind", "256.0.0.1"},
    {"bind", "1.2.3"},
    {"bind", "127.0.0.1:80"},
    {"handshake-timeout", "5"},
    {"handshake-timeout", "5x"},
    {"idle-timeout", "-1s"},
    {"idle-timeout", ""},
    {"linger", "1.5s"},
    {"linger", "forever"},
    {"resume-window", "30"},
    {"max-frame", "67108865"},  // 64 MiB + 1
    {"max-frame", "4294967296"},
    {"max-frame", "64k"},
    {"max-pending", "0"},
    {"max-pending", "4MiB"},
    {"max-pending", "18446744073709551616"},  // 2^64
    {"max-connections", "0"},
    {"max-connections", "-5"},
    {"replay-frames", "-1"},
    {"replay-bytes", "1e6"},
    {"replay-memory", ""},
    {"reactors", "257"},
    {"reactors", "0"},
    {"reactors", ""},
    {"read-budget", "0"},
    {"read-budget", "1025"},
    {"read-budget", "many"},
    {"max-pending-total", "0"},
    {"max-pending-total", "-1"},
    {"write-timeout", "10"},
    {"write-timeout", "-1s"},
    {"read-budget-bytes", "0"},
    {"read-budget-bytes", "64k"},
};

TEST(Options, EveryBadValueIsAnErrorNamingTheFlag) {
  for (const BadValue& bad : kBadValues) {
    const std::string flag = std::string("--") + bad.flag;
    SCOPED_TRACE(flag + " '" + bad.value + "'");
    std::string spaced = error_of({flag, bad.value});
    std::string joined = error_of({flag + "=" + bad.value});
    EXPECT_NE(spaced.find(flag), std::string::npos) << spaced;
    EXPECT_NE(joined.find(flag), std::string::npos) << joined;
  }
}

TEST(Options, ABadValueAfterGoodOnesIsStillAnError) {
  std::string message = error_of({"--port", "1", "--linger", "5", "--max-frame", "10"});
  EXPECT_NE(message.find("--linger"), std::string::npos) << message;
}

TEST(Options, ErrorNamesTheBadFlagNotANeighbour) {
  std::string message = error_of({"--port", "1", "--metrics-port", "99999"});
  EXPECT_NE(message.find("--metrics-port"), std::string::npos) << message;
}

// ------------------------------------------------------------------- bounds

TEST(Options, PortBounds) {
  EXPECT_EQ(parsed({"--port", "0"}).port, 0);
  EXPECT_EQ(parsed({"--port", "65535"}).port, 65535);
  EXPECT_EQ(parsed({"--metrics-port", "0"}).metrics_port, 0);
  EXPECT_EQ(parsed({"--metrics-port", "65535"}).metrics_port, 65535);
}

TEST(Options, MaxFrameBounds) {
  EXPECT_EQ(parsed({"--max-frame", "65"}).max_frame, 65u);
  EXPECT_EQ(parsed({"--max-frame", "67108864"}).max_frame, 64u * 1024 * 1024);
}

// A value that would make the server useless is refused at start, with the reason.
TEST(Options, MaxFrameTooSmallForAResumeIsRefused) {
  for (const char* small : {"0", "1", "64"}) {
    const std::string message = error_of({"--max-frame", small});
    EXPECT_NE(message.find("--max-frame"), std::string::npos) << message;
    EXPECT_NE(message.find("FLUX_RESUME"), std::string::npos) << "says why: " << message;
  }
}

TEST(Options, NodeIdAndProxyProtocol) {
  EXPECT_EQ(parsed({}).node_id, 0);
  EXPECT_FALSE(parsed({}).proxy_protocol);
  EXPECT_EQ(parsed({"--node-id", "65535"}).node_id, 65535);
  EXPECT_NE(error_of({"--node-id", "65536"}).find("--node-id"), std::string::npos);
  EXPECT_TRUE(parsed({"--proxy-protocol"}).proxy_protocol);
  EXPECT_TRUE(parsed({"--proxy-protocol", "--port", "0"}).proxy_protocol)
      << "a switch takes no value";
  EXPECT_NE(error_of({"--proxy-protocol=yes"}).find("takes no value"), std::string::npos);
}

TEST(Options, LogFormat) {
  EXPECT_EQ(parsed({}).log_format, LogFormat::kText);
  EXPECT_EQ(parsed({"--log-format", "json"}).log_format, LogFormat::kJson);
  EXPECT_EQ(parsed({"--log-format=text"}).log_format, LogFormat::kText);
  EXPECT_NE(error_of({"--log-format", "xml"}).find("--log-format"), std::string::npos);
}

TEST(Options, VersionIsShownWhereverItStands) {
  const char* argv[] = {"flux-gateway", "--port", "1", "--version"};
  EXPECT_TRUE(std::holds_alternative<ShowVersion>(parse_options(4, argv)));
  const std::string text = version_text();
  EXPECT_EQ(text.rfind("flux-gateway ", 0), 0u) << text;
  EXPECT_NE(text.find("(git "), std::string::npos) << text;
  EXPECT_NE(text.find(" build)"), std::string::npos) << text;
}

TEST(Options, SizesTakeTheFullUnsignedRange) {
  Options o = parsed({"--max-pending", "18446744073709551615", "--replay-memory",
                      "18446744073709551615", "--replay-frames", "0", "--replay-bytes", "0"});
  EXPECT_EQ(o.max_pending, 18446744073709551615u);
  EXPECT_EQ(o.replay_memory, 18446744073709551615u);
  EXPECT_EQ(o.replay_frames, 0u);
  EXPECT_EQ(o.replay_bytes, 0u);
}

TEST(Options, ReactorsCountOrAuto) {
  EXPECT_EQ(parsed({"--reactors", "1"}).reactors, 1u);
  EXPECT_EQ(parsed({"--reactors", "4"}).reactors, 4u);
  EXPECT_EQ(parsed({"--reactors", "256"}).reactors, 256u);
  EXPECT_EQ(parsed({"--reactors", "auto"}).reactors, 0u);  // resolved at start
  for (const char* n : {"0", "257", "-1", "two", "Auto"}) {
    std::string message = error_of({"--reactors", n});
    EXPECT_NE(message.find("--reactors"), std::string::npos) << message;
  }
}

TEST(Options, ReadBudgetBounds) {
  EXPECT_EQ(parsed({"--read-budget", "1"}).read_budget, 1u);
  EXPECT_EQ(parsed({"--read-budget", "1024"}).read_budget, 1024u);
  EXPECT_NE(error_of({"--read-budget", "0"}).find("--read-budget"), std::string::npos);
  EXPECT_NE(error_of({"--read-budget", "1025"}).find("--read-budget"), std::string::npos);
}

TEST(Options, BindTakesNumericAddressesOnly) {
  for (const char* address : {"127.0.0.1", "0.0.0.0", "10.1.2.3", "::", "::1", "fe80::1"})
    EXPECT_EQ(parsed({"--bind", address}).bind, address);
  for (const char* name : {"localhost", "example.com", "ip6-localhost"})
    EXPECT_NE(error_of({"--bind", name}).find("--bind"), std::string::npos) << name;
}

// ---------------------------------------------------- unknown and missing

TEST(Options, UnknownFlagIsAnErrorNamingIt) {
  struct Case {
    std::vector<std::string> args;
    const char* named;
  };
  const Case cases[] = {
      {{"--nope", "1"}, "--nope"},
      {{"--nope=1"}, "--nope"},
      {{"--port", "1", "--nope", "1"}, "--nope"},
      {{"--Port", "1"}, "--Port"},  // flags are case-sensitive
      {{"--max_frame", "1"}, "--max_frame"},
  };
  for (const Case& c : cases) {
    std::string message = error_of(c.args);
    EXPECT_NE(message.find(c.named), std::string::npos) << message;
  }
}

TEST(Options, PositionalArgumentsAndSingleDashFlagsAreErrors) {
  EXPECT_NE(error_of({"9090"}).find("9090"), std::string::npos);
  EXPECT_NE(error_of({"-p", "9090"}).find("-p"), std::string::npos);
}

TEST(Options, MissingValueIsAnErrorNamingTheFlag) {
  for (const FlagDefault& f : kSection9) {
    if (std::string_view(f.default_text) == "off") continue;  // a switch takes no value
    const std::string flag = std::string("--") + f.flag;
    std::string message = error_of({flag});
    EXPECT_NE(message.find(flag), std::string::npos) << message;
    // The last flag of a longer line is just as missing.
    message = error_of({"--port", "1", flag});
    EXPECT_NE(message.find(flag), std::string::npos) << message;
  }
}

TEST(Options, AFlagWhereAValueShouldBeIsNotSilentlyTaken) {
  // "--port --linger 5s": the value of --port is missing; whatever the
  // wording, it must not parse and must blame --port.
  std::string message = error_of({"--port", "--linger", "5s"});
  EXPECT_NE(message.find("--port"), std::string::npos) << message;
}

// --------------------------------------------------------------------- help

TEST(Options, HelpFlagsShowHelp) {
  EXPECT_TRUE(std::holds_alternative<ShowHelp>(parse({"--help"})));
  EXPECT_TRUE(std::holds_alternative<ShowHelp>(parse({"-h"})));
  EXPECT_TRUE(std::holds_alternative<ShowHelp>(parse({"--port", "1", "--help"})));
}

TEST(Options, ParsingPrintsNothing) {
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  parse({"--port", "1"});
  parse({"--nope"});
  parse({"--help"});
  parse({"--linger", "5"});
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

// The help line of a flag: the line whose first word is exactly "--flag".
std::string help_line(const std::string& flag) {
  std::istringstream lines(help_text());
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string first;
    if (words >> first && first == flag) return line;
  }
  return "";
}

TEST(HelpText, ListsEveryFlagWithItsDefault) {
  for (const FlagDefault& f : kSection9) {
    const std::string flag = std::string("--") + f.flag;
    std::string line = help_line(flag);
    ASSERT_FALSE(line.empty()) << flag << " is missing from --help:\n" << help_text();
    EXPECT_NE(line.find(std::string("(default ") + f.default_text + ")"), std::string::npos)
        << line;
  }
  EXPECT_FALSE(help_line("--help").empty());
}

TEST(HelpText, EveryDefaultItShowsParsesToTheActualDefault) {
  // The help and the parser must not disagree: feeding each printed default
  // back in yields exactly the default-constructed Options.
  std::vector<std::string> args;
  for (const FlagDefault& f : kSection9)
    if (std::string_view(f.default_text) != "off")  // a switch is off by being absent
      args.push_back(std::string("--") + f.flag + "=" + f.default_text);
  EXPECT_TRUE(same(parsed(args), Options{}));
}

TEST(SessionStoreFlag, TakesMemoryOrARedisAddress) {
  const Options redis = parsed({"--session-store", "redis://cache.internal:6380"});
  EXPECT_TRUE(redis.session_store.redis);
  EXPECT_EQ(redis.session_store.host, "cache.internal");
  EXPECT_EQ(redis.session_store.port, 6380);
  EXPECT_FALSE(parsed({"--session-store=redis://127.0.0.1:1", "--session-store", "memory"})
                   .session_store.redis);
  EXPECT_EQ(parsed({"--session-store-timeout", "250ms"}).session_store_timeout, 250ms);
  for (const char* bad : {"redis", "redis://", "redis://host", "redis://:6379", "redis://h:0",
                          "redis://h:65536", "redis://h:x", "memcached://h:1"}) {
    const ParseOutcome outcome = parse({"--session-store", bad});
    ASSERT_TRUE(std::holds_alternative<OptionError>(outcome)) << bad;
    EXPECT_NE(std::get<OptionError>(outcome).message.find("--session-store"), std::string::npos);
  }
  EXPECT_TRUE(std::holds_alternative<OptionError>(parse({"--session-store-timeout", "0"})));
}

TEST(HelpText, ListsOnlyRealFlags) {
  std::istringstream lines(help_text());
  int listed = 0;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string first;
    if (!(words >> first) || first.rfind("--", 0) != 0 || first == "--help" || first == "--version")
      continue;
    ++listed;
    bool known = false;
    for (const FlagDefault& f : kSection9) known = known || first == std::string("--") + f.flag;
    EXPECT_TRUE(known) << first << " is in --help but is not a flag";
  }
  EXPECT_EQ(listed, static_cast<int>(std::size(kSection9))) << "each flag listed exactly once";
}

}  // namespace
}  // namespace flux
