#pragma once
// One row of GET /connections: a copy of a connection's public figures,
// made by its reactor on its own thread and handed to the metrics thread.

#include <cstdint>
#include <string>

namespace flux {

struct ConnectionInfo {
  uint64_t id = 0;
  std::string reactor;
  std::string peer;   // "127.0.0.1:53422"
  std::string state;  // "handshake", "ready", "closing"
  double age_seconds = 0;
  uint64_t frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0, bytes_pending = 0;
};

}  // namespace flux
