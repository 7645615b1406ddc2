#pragma once
// Durations on the command line: a number and a unit, `2s`, `500ms`, `1.5s`,
// `100us`, `2m`; a bare `0` means zero.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flux::bench {

// Nanoseconds, or nullopt if `text` is not a non-negative number with a unit
// among ns, us, ms, s, m.
std::optional<uint64_t> parse_duration_ns(std::string_view text);

// The shortest exact-looking rendering: "2s", "500ms", "1.5s", "250us".
std::string format_duration(uint64_t ns);

}  // namespace flux::bench
