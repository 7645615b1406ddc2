#pragma once
// An enum value's spelling, looked up in the one table of names its enum
// has (a `constexpr std::string_view kNames[]` in declaration order, beside
// the enum's to_string). Each table sits next to a static_assert that ties
// its length to the enum's count and last value, so a value added without a
// name, or a name without a value, does not compile.
//
// Thread contract: pure functions.

#include <cstddef>
#include <string_view>

namespace flux {

template <typename Enum, size_t N>
constexpr std::string_view name_in(const std::string_view (&names)[N], Enum value,
                                   std::string_view unknown = "?") {
  const auto i = static_cast<size_t>(value);
  return i < N ? names[i] : unknown;
}

}  // namespace flux
