#include "metrics/stats_history.h"

namespace flux {

ReactorSnapshot total_of(const std::vector<ReactorSnapshot>& reactors) {
  if (reactors.empty()) return {};
  ReactorSnapshot total = reactors.front();
  for (size_t i = 1; i < reactors.size(); ++i) total.merge(reactors[i]);
  return total;
}

void StatsHistory::add(Sample sample) {
  std::lock_guard lock(mutex_);
  samples_.push_back(std::move(sample));
  while (samples_.size() > kSamples) samples_.pop_front();
}

std::optional<ProcessStats> StatsHistory::latest_process() const {
  std::lock_guard lock(mutex_);
  if (samples_.empty()) return std::nullopt;
  return samples_.back().process;
}

std::optional<StatsHistory::Window> StatsHistory::window(size_t seconds_back) const {
  std::lock_guard lock(mutex_);
  if (samples_.size() < 2) return std::nullopt;
  const size_t back = std::min(seconds_back, samples_.size() - 1);
  return Window{samples_.back(), samples_[samples_.size() - 1 - back]};
}

}  // namespace flux
