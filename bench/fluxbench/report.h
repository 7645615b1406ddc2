#pragma once
// The final report: a human summary, or one JSON object (--json).
//
// JSON keys carry their units (_us, _bytes, _seconds, _per_second); a figure
// that could not be measured is null. Layout:
//   { "tool", "target", "config": {...}, "measure": {...}, "connections": {...},
//     "frames": {...}, "errors", "failures": {why: count}, "throughput": {...},
//     "latency_us": {count, mean, p50, p90, p99, p999, p9999, max},
//     "send_lag_us": {...} | null,
//     "seconds": [{elapsed_seconds, echoes_per_second, p99_us, send_lag_p99_us}],
//     "client": {...}, "server": {...} | null,
//     "result": "ok" | "errors" | "no-connections" | "interrupted" }
//
// Thread contract: the main thread, after the run.

#include <cstdio>

#include "bench/fluxbench/run_result.h"

namespace flux::bench {

void print_summary(const RunResult& result, std::FILE* out);
void print_json(const RunResult& result, std::FILE* out);

}  // namespace flux::bench
