#pragma once
// Process-wide figures read from /proc/self, the way Prometheus's standard
// process collector reads them (prometheus-cpp 1.0 has none). The fields are
// the rows of FLUX_PROCESS_METRICS (metrics/metric_table.h), which also give
// their exposition and /stats keys.
//
// Thread contract: any thread; each call reads /proc afresh.

#include <cstdint>

#include "metrics/metric_table.h"

namespace flux {

struct ProcessStats {
  // NOLINTNEXTLINE(cppcoreguidelines-macro-usage)
#define FLUX_PROCESS_FIELD(field, type, kind, name, help) type field = 0;
  FLUX_PROCESS_METRICS(FLUX_PROCESS_FIELD)
#undef FLUX_PROCESS_FIELD
};

ProcessStats read_process_stats();

}  // namespace flux
