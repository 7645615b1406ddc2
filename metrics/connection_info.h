#pragma once
// One row of GET /connections: a copy of a connection's public figures,
// made by its reactor on its own thread and handed to the metrics thread.

#include <cstdint>
#include <optional>
#include <string>

namespace flux {

// The kernel's view of a TCP connection (TCP_INFO), in base units.
struct TcpInfo {
  double rtt_seconds = 0;     // smoothed round-trip time
  double rttvar_seconds = 0;  // its variance (mean deviation)
  uint64_t retransmits = 0;   // segments retransmitted over the connection's life
  uint64_t unacked = 0;       // segments sent and not yet acknowledged
  uint64_t cwnd = 0;          // congestion window, in segments
  std::optional<uint64_t> delivery_rate_bytes_per_second;  // where the kernel has it
};

struct ConnectionInfo {
  uint64_t id = 0;
  std::string reactor;
  std::string peer;   // "127.0.0.1:53422"
  std::string state;  // "handshake", "ready", "closing"
  double age_seconds = 0;
  uint64_t frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0, bytes_pending = 0;
  double idle_seconds = 0;     // since the last frame read (since connecting if none)
  double paused_seconds = 0;   // reading paused by back-pressure, in all
  uint64_t seq = 0;            // the session's seq (0 without a session)
  std::optional<TcpInfo> tcp;  // none for a socket that is not TCP
};

}  // namespace flux
