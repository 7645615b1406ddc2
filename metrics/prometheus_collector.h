#pragma once
// GatewayCollector: turns reactor snapshots and process figures into
// Prometheus metric families at scrape time (a prometheus::Collectable),
// serialized by prometheus-cpp's TextSerializer (format 0.0.4).
//
// The reactors never call prometheus-cpp: its Histogram::Observe takes a
// mutex. They write their own atomics; this reads them only when scraped.
// The families are those of metrics/metric_table.h, in its order: every
// reactor row gets reactor="<i>" (the list, with help texts, is also in the
// README).
//
// Thread contract: any thread (reads atomics, /proc).

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <string>
#include <vector>

#include "metrics/process_stats.h"
#include "metrics/reactor_metrics.h"

namespace flux {

struct ScrapeInput {
  std::string version;
  uint16_t node_id = 0;  // --node-id: the node label of the build-info series
  std::vector<std::string> labels;
  std::vector<ReactorSnapshot> reactors;
  ProcessStats process;
};

// Builds the families; pure, for tests.
std::vector<prometheus::MetricFamily> build_metric_families(const ScrapeInput& input);

// Text exposition of the families.
std::string serialize_metrics(const std::vector<prometheus::MetricFamily>& families);

class GatewayCollector : public prometheus::Collectable {
 public:
  explicit GatewayCollector(std::function<ScrapeInput()> take_input)
      : take_input_(std::move(take_input)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    return build_metric_families(take_input_());
  }

 private:
  std::function<ScrapeInput()> take_input_;
};

}  // namespace flux
