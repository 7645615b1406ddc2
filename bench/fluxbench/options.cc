#include "bench/fluxbench/options.h"

#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <string_view>

#include "bench/fluxbench/churn.h"
#include "bench/fluxbench/duration.h"
#include "bench/fluxbench/http_get.h"

namespace flux::bench {
namespace {

constexpr uint32_t kMinSize = 16;         // counter + timestamp
constexpr uint32_t kMaxSize = 16u << 20;  // far above any sane --max-frame
constexpr uint32_t kMaxConns = 1'000'000;
constexpr unsigned kMaxThreads = 64;
constexpr unsigned kMaxSrcIps = 254;         // 127.0.0.1 .. 127.0.0.254
constexpr uint32_t kConnsPerSrcIp = 20'000;  // below the 28k ephemeral ports

template <typename T>
std::optional<T> parse_uint(std::string_view text, T min, T max) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

std::optional<double> parse_positive(std::string_view text) {
  const std::string s(text);
  char* end = nullptr;
  const double value = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0' || !std::isfinite(value) || value <= 0) return std::nullopt;
  return value;
}

bool is_loopback(in_addr_t addr) {
  return (ntohl(addr) >> 24) == 127;
}

using Setter = std::function<std::optional<std::string>(Options&, std::string_view)>;

std::string bad(std::string_view flag, std::string_view value, std::string_view want) {
  return "invalid value '" + std::string(value) + "' for " + std::string(flag) + ": " +
         std::string(want);
}

template <typename T>
Setter uint_setter(T Options::*field, T min, T max, const char* flag) {
  return [=](Options& o, std::string_view v) -> std::optional<std::string> {
    const auto parsed = parse_uint<T>(v, min, max);
    if (!parsed) {
      return bad(flag, v,
                 "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    o.*field = *parsed;
    return std::nullopt;
  };
}

Setter duration_setter(uint64_t Options::*field, const char* flag) {
  return [=](Options& o, std::string_view v) -> std::optional<std::string> {
    const auto parsed = parse_duration_ns(v);
    if (!parsed) return bad(flag, v, "a duration such as 500ms, 2s, 1m");
    o.*field = *parsed;
    return std::nullopt;
  };
}

Setter positive_setter(double Options::*field, const char* flag) {
  return [=](Options& o, std::string_view v) -> std::optional<std::string> {
    const auto parsed = parse_positive(v);
    if (!parsed) return bad(flag, v, "a positive number");
    o.*field = *parsed;
    return std::nullopt;
  };
}

struct Flags {
  std::map<std::string, Setter, std::less<>> with_value;
  bool window_given = false;
  bool rate_given = false;
};

// Every flag that takes a value; --window/--rate also note that they were given.
void install_flags(Flags& flags) {
  auto& m = flags.with_value;
  m["--host"] = [](Options& o, std::string_view v) -> std::optional<std::string> {
    o.host = std::string(v);
    return std::nullopt;
  };
  m["--port"] = uint_setter<uint16_t>(&Options::port, 1, 65535, "--port");
  m["--threads"] = uint_setter<unsigned>(&Options::threads, 1, kMaxThreads, "--threads");
  m["--conns"] = uint_setter<uint32_t>(&Options::conns, 1, kMaxConns, "--conns");
  m["--src-ips"] = uint_setter<unsigned>(&Options::src_ips, 1, kMaxSrcIps, "--src-ips");
  m["--connect-rate"] = positive_setter(&Options::connect_rate, "--connect-rate");
  m["--size"] = uint_setter<uint32_t>(&Options::size, kMinSize, kMaxSize, "--size");
  m["--warmup"] = duration_setter(&Options::warmup_ns, "--warmup");
  m["--duration"] = duration_setter(&Options::duration_ns, "--duration");
  m["--grace"] = duration_setter(&Options::grace_ns, "--grace");
  m["--connect-timeout"] = duration_setter(&Options::connect_timeout_ns, "--connect-timeout");
  m["--stats-url"] = [](Options& o, std::string_view v) -> std::optional<std::string> {
    o.stats_url = std::string(v);
    return std::nullopt;
  };
  m["--churn"] = positive_setter(&Options::churn_rate, "--churn");
  auto window = uint_setter<uint32_t>(&Options::window, 1, 1u << 20, "--window");
  m["--window"] = [&flags, window](Options& o, std::string_view v) {
    flags.window_given = true;
    return window(o, v);
  };
  auto rate = positive_setter(&Options::rate, "--rate");
  m["--rate"] = [&flags, rate](Options& o, std::string_view v) {
    flags.rate_given = true;
    return rate(o, v);
  };
}

std::optional<std::string> resolve_host(Options& o) {
  const std::string host = o.host == "localhost" ? "127.0.0.1" : o.host;
  in_addr addr{};
  if (::inet_pton(AF_INET, host.c_str(), &addr) != 1) {
    return "--host must be a numeric IPv4 address (or localhost), got '" + o.host + "'";
  }
  o.host_addr = addr.s_addr;
  o.host_is_loopback = is_loopback(addr.s_addr);
  if (!o.host_is_loopback && !o.allow_remote) {
    return "--host " + o.host + " is not a loopback address (127.0.0.0/8); add --allow-remote " +
           "to load a remote server";
  }
  return std::nullopt;
}

std::optional<std::string> check_stats_url(const Options& o) {
  if (o.stats_url.empty()) return std::nullopt;
  const auto url = parse_http_url(o.stats_url);
  if (!url) return "--stats-url must look like http://127.0.0.1:9100/stats";
  if (!is_loopback(url->addr) && !o.allow_remote) {
    return "--stats-url host is not a loopback address; add --allow-remote";
  }
  return std::nullopt;
}

std::optional<std::string> finish(Options& o, const Flags& flags) {
  if (flags.window_given && flags.rate_given) return "--window and --rate exclude each other";
  o.mode = flags.rate_given ? LoadMode::kOpen : LoadMode::kClosed;
  if (o.churn_rate > 0 && !kChurnAvailable) {
    return "--churn (drop and resume connections) arrives with the sessions work; not yet "
           "available";
  }
  if (auto error = resolve_host(o)) return error;
  if (auto error = check_stats_url(o)) return error;
  if (o.src_ips == 0) o.src_ips = (o.conns + kConnsPerSrcIp - 1) / kConnsPerSrcIp;
  if (o.src_ips > 1 && !o.host_is_loopback) return "--src-ips > 1 needs a loopback --host";
  if (o.threads > o.conns) o.threads = o.conns;
  if (o.duration_ns == 0) return "--duration must be > 0";
  return std::nullopt;
}

}  // namespace

uint64_t Options::connect_budget_ns() const noexcept {
  const double paced = connect_rate > 0 ? static_cast<double>(conns) / connect_rate * 1e9 : 0.0;
  return static_cast<uint64_t>(paced) + connect_timeout_ns;
}

ParseOutcome parse_options(int argc, char** argv) {
  Options options;
  Flags flags;
  install_flags(flags);
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") return ShowHelp{};
    if (arg == "--json") {
      options.json = true;
      continue;
    }
    if (arg == "--no-progress") {
      options.progress = false;
      continue;
    }
    if (arg == "--allow-remote") {
      options.allow_remote = true;
      continue;
    }
    if (arg == "--proxy-v2") {
      options.proxy_v2 = true;
      continue;
    }
    if (arg == "--resume-on-close") {
      options.resume_on_close = true;
      continue;
    }
    std::string_view value;
    bool inline_value = false;
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inline_value = true;
    }
    const auto it = flags.with_value.find(arg);
    if (it == flags.with_value.end()) return OptionError{"unknown option " + std::string(arg)};
    if (!inline_value) {
      if (i + 1 >= argc) return OptionError{std::string(arg) + " needs a value"};
      value = argv[++i];
    }
    if (auto error = it->second(options, value)) return OptionError{*error};
  }
  if (auto error = finish(options, flags)) return OptionError{*error};
  return options;
}

std::string help_text() {
  return R"(fluxbench: load generator for the Flux gateway (and any server of its protocol)

usage: fluxbench [options]

target
  --host ADDR            IPv4 server address (default 127.0.0.1; loopback only
                         unless --allow-remote)
  --port N               server port (default 9090)
  --allow-remote         allow a non-loopback --host / --stats-url
  --proxy-v2             start each connection with a PROXY v2 header (a node run
                         with --proxy-protocol, loaded without its balancer)
connections
  --conns N              connections (default 100); each handshakes with FLUX_HELLO
  --threads N            client threads, each with its own epoll loop (default 1)
  --src-ips K            spread connections over source addresses 127.0.0.1..127.0.0.K
                         (default: one per 20000 connections)
  --connect-rate R       new connections per second, all threads together (default: unlimited)
  --connect-timeout D    connect + handshake bound per connection (default 10s)
load (one of)
  --window W             closed loop: W frames in flight per connection (default 1)
  --rate R               open loop: R frames/s in total, each connection on its own
                         schedule; latency counts from the intended send time
  --size B               payload bytes, >= 16 (default 64)
time (every run stops by itself: connect budget + warmup + duration + grace)
  --warmup D             traffic not measured (default 1s)
  --duration D           measured traffic (default 10s)
  --grace D              after the duration: wait for the last echoes (default 3s)
output
  --stats-url URL        poll the gateway's /stats once a second (http://127.0.0.1:M/stats)
  --json                 print one JSON object on stdout instead of the summary
  --no-progress          no live progress line on stderr
resume (docs/protocol.md section 8)
  --churn R              R abrupt drops (RST) per second in total: the connection
                         reconnects at once with FLUX_RESUME; every echo must still
                         arrive exactly once and in order; reports resume latency
  --resume-on-close      a READY connection the server closes or resets (its node
                         died) reconnects and resumes like a drop, with the same
                         checks, instead of failing the run (counted: server_closes);
                         a resume closed unanswered is tried again, up to 5 times
                         (counted: resume_retries)

Durations: 500ms, 2s, 1.5s, 1m. Exit status: 0 all echoes verified; 1 an echo
mismatched, was lost, a resume failed, or the server sent an error or closed
a connection;
2 usage; 3 no connection got ready; 130 interrupted.
)";
}

}  // namespace flux::bench
