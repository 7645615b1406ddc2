#pragma once
// What went wrong between a reactor and its session store (Redis,
// gateway/session_store.h): the label of flux_session_store_errors_total.
// Here, below both layers, so that the metrics can name the kinds without
// depending on the gateway.
//
// Thread contract: pure values and functions.

#include <cstdint>
#include <string_view>

namespace flux {

enum class StoreError : uint8_t {
  kConnect,     // a connection attempt failed (refused, unreachable, timed out)
  kDisconnect,  // an established connection was lost
  kTimeout,     // a command had no answer within --session-store-timeout
  kReply,       // Redis answered with an error (e.g. out of memory, no script)
};
inline constexpr int kStoreErrorCount = 4;
std::string_view to_string(StoreError error);

}  // namespace flux
