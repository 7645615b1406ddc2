#include "common/store_error.h"

#include <array>

namespace flux {

std::string_view to_string(StoreError error) {
  static constexpr std::array<std::string_view, kStoreErrorCount> kNames = {"connect", "disconnect",
                                                                            "timeout", "reply"};
  return kNames[static_cast<size_t>(error)];
}

}  // namespace flux
