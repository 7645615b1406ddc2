#include "common/store_error.h"

#include <iterator>

#include "common/enum_names.h"

namespace flux {
namespace {

constexpr std::string_view kStoreErrorNames[] = {"connect", "disconnect", "timeout", "reply"};
static_assert(std::size(kStoreErrorNames) == kStoreErrorCount &&
              static_cast<int>(StoreError::kReply) + 1 == kStoreErrorCount);

}  // namespace

std::string_view to_string(StoreError error) {
  return name_in(kStoreErrorNames, error, "reply");
}

}  // namespace flux
