#pragma once
// Options: fluxbench's command line, parsed and validated.
//
// Two load models, chosen by the flag given:
//   closed loop  --window W  each connection keeps W frames in flight; a new
//                            frame leaves when an echo comes back
//   open loop    --rate R    R frames/s in total, every connection on its own
//                            fixed schedule, whatever the server does
// Neither flag means --window 1.
//
// Thread contract: parsed on the main thread before any worker starts, then
// read-only and shared by every thread.

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <variant>

namespace flux::bench {

enum class LoadMode { kClosed, kOpen };

struct Options {
  std::string host = "127.0.0.1";
  in_addr_t host_addr = 0;  // network order, filled by the parser
  bool host_is_loopback = true;
  uint16_t port = 9090;
  bool allow_remote = false;
  // Open every connection with a PROXY protocol v2 header carrying its own
  // addresses, as HAProxy's send-proxy-v2 does: for a node started with
  // --proxy-protocol, loaded straight instead of through its balancer.
  bool proxy_v2 = false;

  unsigned threads = 1;
  uint32_t conns = 100;
  unsigned src_ips = 0;     // 0: auto, enough addresses for `conns`
  double connect_rate = 0;  // connections/s over all threads; 0 = unlimited

  LoadMode mode = LoadMode::kClosed;
  uint32_t window = 1;  // closed loop: frames in flight per connection
  double rate = 0;      // open loop: frames/s in total
  uint32_t size = 64;   // payload bytes, >= 16

  uint64_t warmup_ns = 1'000'000'000;
  uint64_t duration_ns = 10'000'000'000;
  uint64_t grace_ns = 3'000'000'000;             // drain bound after the duration
  uint64_t connect_timeout_ns = 10'000'000'000;  // per connection: connect + handshake

  std::string stats_url;  // e.g. http://127.0.0.1:9100/stats
  bool json = false;
  bool progress = true;

  // The resume mode (see churn.h): drops per second over all threads; 0 = off.
  double churn_rate = 0;
  // A READY connection the server ends without FLUX_BYE (EOF, reset: its
  // node died) reconnects and resumes like a drop instead of failing the run.
  bool resume_on_close = false;

  // The connection phase's bound: the paced connects plus one timeout.
  uint64_t connect_budget_ns() const noexcept;
  // Everything after the connection phase: warm-up + duration + grace.
  uint64_t traffic_budget_ns() const noexcept { return warmup_ns + duration_ns + grace_ns; }
};

struct ShowHelp {};
struct OptionError {
  std::string message;
};
using ParseOutcome = std::variant<Options, ShowHelp, OptionError>;

// Parses argv (`--flag value` or `--flag=value`) and checks every bound.
ParseOutcome parse_options(int argc, char** argv);

std::string help_text();

}  // namespace flux::bench
