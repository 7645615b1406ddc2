#include "common/proxy_header_error.h"

namespace flux {

std::string_view to_string(ProxyHeaderError error) {
  switch (error) {
    case ProxyHeaderError::kMissing:
      return "missing";
    case ProxyHeaderError::kMalformed:
      return "malformed";
    case ProxyHeaderError::kOversized:
      return "oversized";
    case ProxyHeaderError::kTimeout:
      return "timeout";
  }
  return "malformed";
}

}  // namespace flux
