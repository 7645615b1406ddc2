#include "gateway/session_id.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace flux {

SessionId SessionIdGenerator::next() {
  constexpr size_t kRandomBytes = 14;  // 112 bits after the 16-bit node id
  if (used_ + kRandomBytes > random_.size()) refill();
  static constexpr char kHex[] = "0123456789abcdef";
  SessionId id;
  for (size_t i = 0; i < 4; ++i) id[i] = kHex[(node_id_ >> (12 - 4 * i)) & 0xf];
  for (size_t i = 0; i < kRandomBytes; ++i) {
    unsigned char byte = random_[used_ + i];
    id[4 + 2 * i] = kHex[byte >> 4];
    id[4 + 2 * i + 1] = kHex[byte & 0xf];
  }
  used_ += kRandomBytes;
  return id;
}

void SessionIdGenerator::refill() {
  size_t filled = 0;
  while (filled < random_.size()) {
    ssize_t n = getrandom(random_.data() + filled, random_.size() - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // No cryptographic randomness means no safe session ids: refuse to go on.
      perror("flux: getrandom");
      std::abort();
    }
    filled += static_cast<size_t>(n);
  }
  used_ = 0;
}

bool is_well_formed_session_id(std::string_view text) {
  if (text.size() != 32) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace flux
