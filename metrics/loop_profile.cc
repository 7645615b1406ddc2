#include "metrics/loop_profile.h"

namespace flux {

nlohmann::json profile_window_json(const ReactorSnapshot* newer, const ReactorSnapshot* older) {
  std::array<uint64_t, kActivityCount> delta{};
  uint64_t total = 0;
  if (newer && older)
    for (size_t i = 0; i < kActivityCount; ++i) {
      const uint64_t a = newer->watchdog.activity_samples_total[i];
      const uint64_t b = older->watchdog.activity_samples_total[i];
      delta[i] = a >= b ? a - b : 0;
      total += delta[i];
    }
  nlohmann::json share = nlohmann::json::object();
  for (size_t i = 0; i < kActivityCount; ++i)
    share[std::string(to_string(static_cast<Activity>(i)))] =
        total > 0 ? double(delta[i]) / double(total) : 0.0;
  return {{"samples", total}, {"share", std::move(share)}};
}

}  // namespace flux
