#include "integration/metrics_scrape.h"

#include <httplib.h>

#include <thread>

namespace flux::itest {

using exposition::Exposition;
using exposition::Labels;
using std::chrono::milliseconds;
using std::chrono::seconds;

// GET /metrics, parsed; nullopt if it does not answer 200 within `timeout`
// or does not parse (`why` says which).
std::optional<Exposition> scrape(uint16_t metrics_port, seconds timeout, std::string* why) {
  httplib::Client http("127.0.0.1", metrics_port);
  http.set_connection_timeout(timeout);
  http.set_read_timeout(timeout);
  http.set_write_timeout(timeout);
  httplib::Result res = http.Get("/metrics");
  if (!res || res->status != 200) {
    if (why) *why = res ? "status " + std::to_string(res->status) : httplib::to_string(res.error());
    return std::nullopt;
  }
  Exposition parsed = exposition::parse(res->body);
  if (!parsed.errors.empty()) {
    if (why) *why = "unparsable exposition: " + parsed.errors.front();
    return std::nullopt;
  }
  return parsed;
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
