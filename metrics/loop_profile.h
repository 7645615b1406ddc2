#pragma once
// The /stats "profile" block: the share of the loop's time each activity
// took over a window, from the watchdog's samples of the activity word
// (the watchdog row activity_samples_total, metrics/stall_watchdog.h):
//
//   "profile": {"1s":  {"samples": 97, "share": {"poll": 0.98, "read": 0.01, ...}},
//               "10s": {...}}
//
// Every activity is present (0 when unseen); with no samples in the window
// (--profile-hz 0, or a gateway younger than a sample) every share is 0.
//
// Thread contract: pure.

#include <nlohmann/json.hpp>

#include "metrics/reactor_metrics.h"

namespace flux {

// The share of each activity between two snapshots of one reactor (or totals).
nlohmann::json profile_window_json(const ReactorSnapshot* newer, const ReactorSnapshot* older);

}  // namespace flux
