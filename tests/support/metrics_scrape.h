#pragma once
// Reading the gateway's /metrics from a test in one call: one scrape, parsed
// (MetricsHttp, metrics_http.h, underneath), and polling until a series
// reaches a value (bounded by a deadline).

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "support/deadline.h"
#include "support/exposition_parser.h"

namespace flux::itest {

// GET /metrics, parsed; nullopt if it does not answer 200 within `timeout`
// or does not parse (`why` says which). MetricsHttp(port, timeout).scrape(why).
std::optional<exposition::Exposition> scrape(uint16_t metrics_port,
                                             std::chrono::seconds timeout = std::chrono::seconds(5),
                                             std::string* why = nullptr);

// The sum of a metric over every series matching `labels` (all reactors);
// -1 when it is missing.
double metric(const exposition::Exposition& e, std::string_view name,
              const exposition::Labels& labels = {});

// Polls /metrics until the metric satisfies `ok`, or fails at the deadline
// naming the last value seen.
::testing::AssertionResult metric_becomes(uint16_t metrics_port, std::string_view name,
                                          const exposition::Labels& labels,
                                          const std::function<bool(double)>& ok, Deadline deadline,
                                          std::string_view wanted);

::testing::AssertionResult metric_equals(uint16_t metrics_port, std::string_view name,
                                         const exposition::Labels& labels, double wanted,
                                         Deadline deadline);

}  // namespace flux::itest
