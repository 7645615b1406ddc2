#include "common/proxy_header_error.h"

#include <iterator>

#include "common/enum_names.h"

namespace flux {
namespace {

constexpr std::string_view kProxyHeaderErrorNames[] = {"missing", "malformed", "oversized",
                                                       "timeout"};
static_assert(std::size(kProxyHeaderErrorNames) == kProxyHeaderErrorCount &&
              static_cast<int>(ProxyHeaderError::kTimeout) + 1 == kProxyHeaderErrorCount);

}  // namespace

// A value out of range is reported as what it most likely is: a malformed header.
std::string_view to_string(ProxyHeaderError error) {
  return name_in(kProxyHeaderErrorNames, error, "malformed");
}

}  // namespace flux
