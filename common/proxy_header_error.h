#pragma once
// Why a PROXY v2 header was refused (gateway/proxy_header.h parses them):
// the label of flux_proxy_header_errors_total. Here, below both layers, so
// that the metrics can name the reasons without depending on the gateway.
//
// Thread contract: pure values and functions.

#include <cstdint>
#include <string_view>

namespace flux {

enum class ProxyHeaderError : uint8_t {
  kMissing,    // the first bytes are not the v2 signature (e.g. a direct client)
  kMalformed,  // signature right, version / command / family / length wrong
  kOversized,  // longer than kMaxProxyHeader
  kTimeout,    // not complete within the handshake timeout
};
inline constexpr int kProxyHeaderErrorCount = 4;
std::string_view to_string(ProxyHeaderError error);

}  // namespace flux
