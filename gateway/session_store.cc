#include "gateway/session_store.h"

#include <charconv>
#include <random>

namespace flux {
namespace {

uint64_t random_nonce() {
  std::random_device device;
  return (uint64_t{device()} << 32) | device();
}

}  // namespace

SessionStore::SessionStore(Deps deps) : deps_(std::move(deps)), boot_nonce_(random_nonce()) {}

std::chrono::milliseconds SessionStore::lease() const noexcept {
  return deps_.options.resume_window + 2 * kLeaseRenewEvery;
}

// "<node>.<boot nonce>.<reactor>.<counter>": unique across nodes, reactors,
// restarts of a node, and attachments.
StoreToken SessionStore::next_token() {
  StoreToken token;
  char* p = token.text.data();
  char* end = p + token.text.size();
  p = std::to_chars(p, end, deps_.options.node_id).ptr;
  *p++ = '.';
  p = std::to_chars(p, end, boot_nonce_, 16).ptr;
  *p++ = '.';
  p = std::to_chars(p, end, deps_.reactor_index).ptr;
  *p++ = '.';
  p = std::to_chars(p, end, ++token_counter_).ptr;
  token.size = static_cast<uint8_t>(p - token.text.data());
  return token;
}

}  // namespace flux
