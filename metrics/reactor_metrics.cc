#include "metrics/reactor_metrics.h"

namespace flux {

uint64_t ReactorSnapshot::open_connections() const noexcept {
  uint64_t open = 0;
  for (uint64_t n : connections.by_state) open += n;
  return open;
}

uint64_t ReactorSnapshot::closed_connections() const noexcept {
  uint64_t closed = 0;
  for (uint64_t n : connections.closed_total) closed += n;
  return closed;
}

ReactorSnapshot snapshot(const ReactorMetrics& metrics) noexcept {
  ReactorSnapshot s;
  s.read(metrics);
  return s;
}

}  // namespace flux
