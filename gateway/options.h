#pragma once
// The gateway's command-line options (docs/protocol.md, "Server options",
// plus --read-budget and --read-budget-bytes). Every bound of the protocol is a flag so that tests
// and users can shrink it.
//
// Syntax: `--flag value` or `--flag=value`. Durations need a unit
// (`250ms`, `30s`, `2m`, `1h`; a bare `0` means zero). Sizes and counts are
// plain non-negative integers (bytes for sizes).

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>

#include "gateway/log.h"

namespace flux {

using Millis = std::chrono::milliseconds;

// A loop turn reads at most this many times --read-budget-bytes from all
// its connections together (64 x 64 KiB = 4 MiB by default), so one turn
// stays short however many clients flood at once.
inline constexpr uint64_t kTurnReadFactor = 64;

// --session-store: where sessions live (docs/protocol.md, "Clusters").
struct SessionStoreAddress {
  bool redis = false;  // false: memory, in this node only
  std::string host;    // redis://HOST:PORT
  uint16_t port = 6379;
};

struct Options {
  uint16_t port = 9090;  // 0 = let the kernel pick a free port
  uint16_t metrics_port = 9100;
  std::string bind = "127.0.0.1";
  Millis handshake_timeout{30'000};
  Millis idle_timeout{60'000};  // 0 = never
  Millis linger{5'000};
  uint32_t max_frame = 65536;
  uint64_t max_pending = 4 * 1024 * 1024;
  // All connections together (split evenly between reactors). 512 MiB: with
  // the 256 MiB replay budget and the read blocks, a flood of non-readers
  // leaves the process well under 2 GiB (docs/protocol.md).
  uint64_t max_pending_total = 512ull * 1024 * 1024;
  Millis write_timeout{10'000};  // 0 = never
  uint64_t max_connections = 100'000;
  uint64_t replay_frames = 256;
  uint64_t replay_bytes = 1024 * 1024;
  uint64_t replay_memory = 256ull * 1024 * 1024;
  Millis resume_window{30'000};
  unsigned reactors = 1;      // 0 = auto: one per online CPU
  unsigned read_budget = 16;  // reads per connection per wakeup
  // Bytes per connection per wakeup; a loop turn reads at most
  // kTurnReadFactor times this from all its connections together.
  uint64_t read_budget_bytes = 64 * 1024;
  LogFormat log_format = LogFormat::kText;
  uint16_t node_id = 0;         // cluster: the first 4 hex digits of every session id
  bool proxy_protocol = false;  // every connection starts with a PROXY v2 header
  SessionStoreAddress session_store;
  Millis session_store_timeout{1'000};  // > 0: a store answer later than this counts as none
};

// The largest control frame a client may need to send:
// "FLUX_RESUME <32 hex> <20-digit seq>". A smaller --max-frame would refuse
// a valid resume as frame-too-large, so it is refused at start.
inline constexpr uint32_t kMinMaxFrame = 65;

struct ShowHelp {};
struct ShowVersion {};
struct OptionError {
  std::string message;  // names the flag and what was wrong with it
};

using ParseOutcome = std::variant<Options, ShowHelp, ShowVersion, OptionError>;

// Parses argv. Pure: prints nothing, exits nothing.
ParseOutcome parse_options(int argc, const char* const* argv);

// The --help text: every flag with its default.
std::string help_text();

// The --version text: version, git revision, build type.
std::string version_text();

// "250ms" -> 250 ms. Exposed for tests. Returns false on a malformed value.
bool parse_duration(const std::string& text, Millis& out);

}  // namespace flux
