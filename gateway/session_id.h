#pragma once
// Session ids: 32 lowercase hex characters. The first 4 name the node that
// created the session (--node-id, big-endian: "002a..." for node 42), so a
// balancer can send a resume to it; the other 112 bits come from the
// kernel's CSPRNG (getrandom). The id is the only credential for a resume,
// so those bits must be unguessable.
//
// Random bytes are fetched 4 KiB at a time, so a handshake costs a syscall
// only once every 256 sessions.
//
// Thread contract: one generator per reactor thread.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace flux {

using SessionId = std::array<char, 32>;

class SessionIdGenerator {
 public:
  explicit SessionIdGenerator(uint16_t node_id = 0) noexcept : node_id_(node_id) {}
  SessionId next();

 private:
  void refill();

  std::array<unsigned char, 4096> random_{};
  size_t used_ = sizeof(random_);  // empty until first use
  uint16_t node_id_;
};

inline std::string_view view(const SessionId& id) {
  return {id.data(), id.size()};
}

// True for exactly 32 lowercase hex characters.
bool is_well_formed_session_id(std::string_view text);

}  // namespace flux
