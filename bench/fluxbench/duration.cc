#include "bench/fluxbench/duration.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "bench/fluxbench/clock.h"

namespace flux::bench {
namespace {

struct Unit {
  std::string_view suffix;
  double ns;
};
// Longest suffixes first, so "ms" is not read as "m" + garbage.
constexpr std::array<Unit, 5> kUnits{
    {{"ns", 1.0}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}}};

}  // namespace

std::optional<uint64_t> parse_duration_ns(std::string_view text) {
  if (text == "0") return 0;
  for (const Unit& unit : kUnits) {
    if (text.size() <= unit.suffix.size() || !text.ends_with(unit.suffix)) continue;
    const std::string number(text.substr(0, text.size() - unit.suffix.size()));
    if (number.find_first_not_of("0123456789.") != std::string::npos) continue;
    char* end = nullptr;
    const double value = std::strtod(number.c_str(), &end);
    if (end == number.c_str() || *end != '\0' || !std::isfinite(value) || value < 0) continue;
    const double ns = value * unit.ns;
    if (ns > 1e18) return std::nullopt;
    return static_cast<uint64_t>(std::llround(ns));
  }
  return std::nullopt;
}

std::string format_duration(uint64_t ns) {
  char buf[32];
  if (ns == 0) return "0";
  if (ns % kNsPerSec == 0) {
    std::snprintf(buf, sizeof buf, "%llus", static_cast<unsigned long long>(ns / kNsPerSec));
  } else if (ns >= kNsPerSec) {
    std::snprintf(buf, sizeof buf, "%gs", ns_to_seconds(ns));
  } else if (ns % kNsPerMs == 0) {
    std::snprintf(buf, sizeof buf, "%llums", static_cast<unsigned long long>(ns / kNsPerMs));
  } else {
    std::snprintf(buf, sizeof buf, "%gus", ns_to_us(ns));
  }
  return buf;
}

}  // namespace flux::bench
