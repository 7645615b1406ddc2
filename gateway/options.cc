#include "gateway/options.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <functional>
#include <limits>
#include <span>
#include <string_view>

namespace flux {
namespace {

// One row per flag: the table drives parsing and --help alike, so the two
// can never disagree.
struct FlagSpec {
  const char* name;
  const char* default_text;
  const char* help;
  // Stores the value into options; returns an error text or "" on success.
  std::function<std::string(const std::string&, Options&)> apply;
  // A switch takes no value: its presence turns it on (apply gets "").
  bool is_switch = false;
};

bool parse_uint(const std::string& text, uint64_t& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

template <typename T>
std::function<std::string(const std::string&, Options&)> uint_setter(T Options::*field,
                                                                     uint64_t min, uint64_t max) {
  return [field, min, max](const std::string& text, Options& o) -> std::string {
    uint64_t v = 0;
    if (!parse_uint(text, v)) return "expected a non-negative integer";
    if (v < min || v > max)
      return "must be between " + std::to_string(min) + " and " + std::to_string(max);
    o.*field = static_cast<T>(v);
    return "";
  };
}

std::function<std::string(const std::string&, Options&)> duration_setter(Millis Options::*field) {
  return [field](const std::string& text, Options& o) -> std::string {
    if (!parse_duration(text, o.*field)) return "expected a duration such as 250ms, 30s or 2m";
    return "";
  };
}

// A handshake that may last forever would let idle sockets pile up: > 0 only.
std::function<std::string(const std::string&, Options&)> positive_duration_setter(
    Millis Options::*field) {
  return [field](const std::string& text, Options& o) -> std::string {
    Millis value{};
    if (!parse_duration(text, value)) return "expected a duration such as 250ms, 30s or 2m";
    if (value.count() <= 0) return "must be greater than 0";
    o.*field = value;
    return "";
  };
}

std::string set_bind(const std::string& text, Options& o) {
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, text.c_str(), &v4) != 1 && inet_pton(AF_INET6, text.c_str(), &v6) != 1)
    return "expected a numeric IPv4 or IPv6 address";
  o.bind = text;
  return "";
}

std::string set_reactors(const std::string& text, Options& o) {
  constexpr uint64_t kMaxReactors = 256;
  if (text == "auto") {
    o.reactors = 0;  // resolved to the online CPUs at start
    return "";
  }
  uint64_t count = 0;
  if (!parse_uint(text, count) || count < 1 || count > kMaxReactors)
    return "expected auto or a number from 1 to " + std::to_string(kMaxReactors);
  o.reactors = static_cast<unsigned>(count);
  return "";
}

std::string set_max_frame(const std::string& text, Options& o) {
  constexpr uint64_t kMax = 64u * 1024 * 1024;
  uint64_t value = 0;
  if (!parse_uint(text, value) || value > kMax)
    return "expected a number of bytes up to " + std::to_string(kMax);
  if (value < kMinMaxFrame)
    return "must be at least " + std::to_string(kMinMaxFrame) +
           ": a FLUX_RESUME frame (id and 20-digit seq) would be refused as too large";
  o.max_frame = static_cast<uint32_t>(value);
  return "";
}

// memory, or redis://HOST:PORT (HOST a name or an IPv4 address, PORT 1-65535).
std::string set_session_store(const std::string& text, Options& o) {
  if (text == "memory") {
    o.session_store = {};
    return "";
  }
  constexpr std::string_view kScheme = "redis://";
  const std::string_view rest =
      std::string_view(text).substr(text.rfind(kScheme, 0) == 0 ? kScheme.size() : text.size());
  const auto colon = rest.rfind(':');
  if (text.rfind(kScheme, 0) != 0 || colon == std::string_view::npos || colon == 0)
    return "expected memory or redis://HOST:PORT";
  uint64_t port = 0;
  if (!parse_uint(std::string(rest.substr(colon + 1)), port) || port == 0 || port > 65535)
    return "expected a port between 1 and 65535 after the host";
  o.session_store = {true, std::string(rest.substr(0, colon)), static_cast<uint16_t>(port)};
  return "";
}

std::string set_log_format_flag(const std::string& text, Options& o) {
  if (text == "text")
    o.log_format = LogFormat::kText;
  else if (text == "json")
    o.log_format = LogFormat::kJson;
  else
    return "expected text or json";
  return "";
}

const std::span<const FlagSpec> flag_table() {
  constexpr uint64_t kU64 = std::numeric_limits<uint64_t>::max();
  static const FlagSpec table[] = {
      {"port", "9090", "TCP port for clients (0 = pick a free port)",
       uint_setter(&Options::port, 0, 65535)},
      {"metrics-port", "9100", "HTTP port for /metrics, /stats, / and /healthz (0 = pick)",
       uint_setter(&Options::metrics_port, 0, 65535)},
      {"bind", "127.0.0.1", "address both ports listen on", set_bind},
      {"handshake-timeout", "30s", "time allowed for the first frame (> 0)",
       positive_duration_setter(&Options::handshake_timeout)},
      {"idle-timeout", "60s", "close READY connections silent this long (0 = never)",
       duration_setter(&Options::idle_timeout)},
      {"linger", "5s", "bound on flushing output of a closing connection",
       duration_setter(&Options::linger)},
      {"max-frame", "65536", "largest payload accepted, in bytes (>= 65: a FLUX_RESUME must fit)",
       set_max_frame},
      {"max-pending", "4194304", "queued output bytes above which reading pauses",
       uint_setter(&Options::max_pending, 1, kU64)},
      {"max-pending-total", "536870912",
       "queued output bytes of all connections together; past it the biggest holders pause",
       uint_setter(&Options::max_pending_total, 1, kU64)},
      {"write-timeout", "10s",
       "close a connection whose output makes no progress this long (0 = never)",
       duration_setter(&Options::write_timeout)},
      {"max-connections", "100000", "connections served at once; more get server-full",
       uint_setter(&Options::max_connections, 1, kU64)},
      {"replay-frames", "256", "data frames kept per session for resume",
       uint_setter(&Options::replay_frames, 0, kU64)},
      {"replay-bytes", "1048576", "bytes kept per session for resume",
       uint_setter(&Options::replay_bytes, 0, kU64)},
      {"replay-memory", "268435456", "server-wide bound on replay bytes",
       uint_setter(&Options::replay_memory, 0, kU64)},
      {"resume-window", "30s", "how long a detached session waits for resume",
       duration_setter(&Options::resume_window)},
      {"reactors", "1", "reactor threads, or auto = one per online CPU", set_reactors},
      {"node-id", "0", "this node's id in a cluster: the first 4 hex digits of its session ids",
       uint_setter(&Options::node_id, 0, 65535)},
      {"proxy-protocol", "off",
       "every connection starts with a PROXY v2 header (behind HAProxy send-proxy-v2); a switch",
       [](const std::string&, Options& o) {
         o.proxy_protocol = true;
         return std::string();
       },
       true},
      {"session-store", "memory",
       "where sessions live: memory (this node), or redis://HOST:PORT (any node resumes them)",
       set_session_store},
      {"session-store-timeout", "1s",
       "store answers later than this: the session falls back to node-local (> 0)",
       positive_duration_setter(&Options::session_store_timeout)},
      {"read-budget", "16", "reads per connection per wakeup (fairness)",
       uint_setter(&Options::read_budget, 1, 1024)},
      {"log-format", "text", "log lines as text, or json (one object per line)",
       set_log_format_flag},
      {"read-budget-bytes", "65536", "bytes read per connection per wakeup (fairness)",
       uint_setter(&Options::read_budget_bytes, 1, kU64)},
  };
  return table;
}

const FlagSpec* find_flag(const std::string& name) {
  for (const FlagSpec& spec : flag_table())
    if (name == spec.name) return &spec;
  return nullptr;
}

}  // namespace

bool parse_duration(const std::string& text, Millis& out) {
  if (text == "0") {
    out = Millis{0};
    return true;
  }
  uint64_t value = 0;
  const char* begin = text.data();
  const char* end = begin + text.size();
  auto [unit, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc{} || unit == begin) return false;
  const std::string suffix(unit, end);
  uint64_t scale = 0;
  if (suffix == "ms")
    scale = 1;
  else if (suffix == "s")
    scale = 1000;
  else if (suffix == "m")
    scale = 60'000;
  else if (suffix == "h")
    scale = 3'600'000;
  else
    return false;
  if (value > std::numeric_limits<int64_t>::max() / scale / 1000) return false;
  out = Millis{static_cast<int64_t>(value * scale)};
  return true;
}

ParseOutcome parse_options(int argc, const char* const* argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return ShowHelp{};
    if (arg == "--version") return ShowVersion{};
    if (arg.rfind("--", 0) != 0) return OptionError{"unexpected argument '" + arg + "'"};
    std::string name = arg.substr(2), value;
    const auto eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const FlagSpec* spec = find_flag(name);
    if (!spec) return OptionError{"unknown flag --" + name + " (see --help)"};
    if (spec->is_switch) {
      if (eq != std::string::npos)
        return OptionError{"--" + name + " takes no value (it is a switch)"};
    } else if (eq == std::string::npos) {
      if (i + 1 >= argc) return OptionError{"--" + name + ": missing value"};
      value = argv[++i];
    }
    if (std::string error = spec->apply(value, options); !error.empty())
      return OptionError{"--" + name + " '" + value + "': " + error};
  }
  return options;
}

std::string help_text() {
  std::string text =
      "flux-gateway: a libevent reactor serving the Flux protocol\n\n"
      "usage: flux-gateway [--flag value | --flag=value]...\n\n"
      "Durations take a unit (250ms, 30s, 2m, 1h; 0 alone is zero); sizes are bytes.\n\n";
  for (const FlagSpec& spec : flag_table()) {
    std::string left = std::string("  --") + spec.name;
    left.resize(std::max<size_t>(24, left.size() + 1), ' ');  // a long name keeps its space
    text += left + spec.help + " (default " + spec.default_text + ")\n";
  }
  text += "  --version             print the version, git revision and build type\n";
  text += "  --help                print this text\n";
  return text;
}

std::string version_text() {
  return std::string("flux-gateway ") + FLUX_VERSION + " (git " + FLUX_GIT_REVISION + ", " +
         FLUX_BUILD_TYPE + " build)\n";
}

}  // namespace flux
