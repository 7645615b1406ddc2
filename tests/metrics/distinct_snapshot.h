#pragma once
// A ReactorSnapshot whose every counter, gauge and stamp holds a value no
// other cell holds, for the exposition tests (Prometheus, /stats): a value
// exported under the wrong name, label or reactor is then caught.
//
// The cells are filled from metrics/metric_table.h's rows, in table order,
// so a row added there is covered without touching the tests. Values are
// first + step, first + 2 step, ...; a kNanoseconds cell is that times
// ns_unit (so that it reads as seconds, not as nanoseconds); an enum-labelled
// row fills only the values it exposes (CLOSED stays 0). Histograms are left
// empty: each test crafts its own.

#include <array>
#include <cstddef>
#include <cstdint>

#include "metrics/metric_def.h"
#include "metrics/metric_table.h"
#include "metrics/reactor_metrics.h"

namespace flux::test {

class DistinctFill {
 public:
  DistinctFill(uint64_t first, uint64_t step, uint64_t ns_unit)
      : next_(first), step_(step), ns_unit_(ns_unit) {}

  template <MetricKind Kind>
  void cell(uint64_t& value, const LabelDef&) {
    value = Kind == MetricKind::kNanoseconds ? next() * ns_unit_ : next();
  }
  template <MetricKind Kind, size_t N>
  void cell(std::array<uint64_t, N>& values, const LabelDef& labels) {
    for (size_t i = 0; i < labels.count && i < N; ++i) values[i] = next();
  }
  template <MetricKind Kind>
  void cell(HistogramSnapshot&, const LabelDef&) {}

 private:
  uint64_t next() { return next_ += step_; }

  uint64_t next_, step_, ns_unit_;
};

inline ReactorSnapshot distinct_snapshot(uint64_t first, uint64_t step, uint64_t ns_unit) {
  ReactorSnapshot s;
  DistinctFill fill(first, step, ns_unit);
  // clang-format off
  // NOLINTBEGIN(cppcoreguidelines-macro-usage)
#define FLUX_FILL_FIELD(field, kind, labels, name, help) \
  fill.cell<MetricKind::kind>(group.field, describe(labels));
#define FLUX_FILL_GROUP(member, Live, Copy, ROWS) { auto& group = s.member; ROWS(FLUX_FILL_FIELD) }
  FLUX_METRIC_GROUPS(FLUX_FILL_GROUP)
#undef FLUX_FILL_GROUP
#undef FLUX_FILL_FIELD
  // NOLINTEND(cppcoreguidelines-macro-usage)
  // clang-format on
  return s;
}

}  // namespace flux::test
