#include "gateway/connection_rows.h"

#include "gateway/loop_clock.h"
#include "gateway/peer_address.h"

namespace flux {

std::vector<ConnectionInfo> connection_rows(const ConnectionRegistry& connections,
                                            const std::string& reactor_label) {
  const uint64_t now = monotonic_ns();
  std::vector<ConnectionInfo> rows;
  rows.reserve(connections.size());
  connections.for_each([&](const Connection& c) {
    if (c.state() == ConnState::kClosed) return;
    const Connection::Traffic& t = c.traffic();
    rows.push_back({c.id(), reactor_label, format_peer(c.peer()), std::string(to_string(c.state())),
                    double(now - c.created_ns()) / 1e9, t.frames_in, t.frames_out, t.bytes_in,
                    t.bytes_out, c.pending_bytes()});
  });
  return rows;
}

}  // namespace flux
