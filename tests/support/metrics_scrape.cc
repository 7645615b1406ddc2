#include "support/metrics_scrape.h"

#include <thread>

#include "support/metrics_http.h"

namespace flux::itest {

using exposition::Exposition;
using exposition::Labels;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::optional<Exposition> scrape(uint16_t metrics_port, seconds timeout, std::string* why) {
  return MetricsHttp(metrics_port, timeout).scrape(why);
}

// The sum of a metric over every series matching `labels` (all reactors);
// -1 when it is missing.
double metric(const Exposition& e, std::string_view name, const Labels& labels) {
  return e.sum(name, labels).value_or(-1);
}

// Polls /metrics until the metric satisfies `ok`, or fails at the deadline
// naming the last value seen.
::testing::AssertionResult metric_becomes(uint16_t metrics_port, std::string_view name,
                                          const Labels& labels,
                                          const std::function<bool(double)>& ok, Deadline deadline,
                                          std::string_view wanted) {
  double last = -1;
  std::string why;
  do {
    if (auto e = scrape(metrics_port, seconds(2), &why)) {
      last = metric(*e, name, labels);
      if (ok(last)) return ::testing::AssertionSuccess();
    }
    std::this_thread::sleep_for(milliseconds(50));  // polling interval, not a wait for a condition
  } while (Clock::now() < deadline);
  return ::testing::AssertionFailure()
         << name << " " << exposition::series_key("", labels) << " never became " << wanted
         << "; last " << last << (why.empty() ? "" : " (last scrape error: " + why + ")");
}

::testing::AssertionResult metric_equals(uint16_t metrics_port, std::string_view name,
                                         const Labels& labels, double wanted, Deadline deadline) {
  return metric_becomes(
      metrics_port, name, labels, [wanted](double v) { return v == wanted; }, deadline,
      std::to_string(static_cast<long long>(wanted)));
}

}  // namespace flux::itest
