#pragma once
// Session ids: 128 bits from the kernel's CSPRNG (getrandom), as 32
// lowercase hex characters. The id is the only credential for a resume,
// so it must be unguessable.
//
// Random bytes are fetched 4 KiB at a time, so a handshake costs a syscall
// only once every 256 sessions.
//
// Thread contract: one generator per reactor thread.

#include <array>
#include <cstddef>
#include <string_view>

namespace flux {

using SessionId = std::array<char, 32>;

class SessionIdGenerator {
 public:
  SessionId next();

 private:
  void refill();

  std::array<unsigned char, 4096> random_{};
  size_t used_ = sizeof(random_);  // empty until first use
};

inline std::string_view view(const SessionId& id) { return {id.data(), id.size()}; }

// True for exactly 32 lowercase hex characters.
bool is_well_formed_session_id(std::string_view text);

}  // namespace flux
