#include "metrics/prometheus_collector.h"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "metrics/metric_table.h"

namespace flux {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

double seconds(uint64_t ns) {
  return double(ns) / 1e9;
}

MetricType prometheus_type(MetricKind kind) {
  switch (kind) {
    case MetricKind::kGauge:
      return MetricType::Gauge;
    case MetricKind::kHistogram:
      return MetricType::Histogram;
    default:
      return MetricType::Counter;
  }
}

ClientMetric scalar(MetricKind kind, Labels labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (prometheus_type(kind) == MetricType::Gauge)
    m.gauge.value = value;
  else
    m.counter.value = value;
  return m;
}

double exposed(MetricKind kind, uint64_t value) {
  return kind == MetricKind::kNanoseconds ? seconds(value) : double(value);
}

ClientMetric histogram(Labels labels, const HistogramSnapshot& h) {
  ClientMetric m;
  m.label = std::move(labels);
  uint64_t cumulative = 0;
  for (size_t b = 0; b < kPrometheusBoundsNs.size(); ++b) {
    cumulative += h.prometheus[b];
    m.histogram.bucket.push_back({cumulative, seconds(kPrometheusBoundsNs[b])});
  }
  // _count is the +Inf bucket, summed from the same copy so they agree.
  m.histogram.sample_count = cumulative + h.prometheus.back();
  m.histogram.sample_sum = seconds(h.sum_ns);
  return m;
}

// The reactor rows of metrics/metric_table.h, in table order: one family
// per Prometheus name (rows sharing a name add their series to it), one
// series per reactor and label value.
class ReactorFamilies {
 public:
  explicit ReactorFamilies(const ScrapeInput& in) : in_(in) {}

  std::vector<MetricFamily> build() {
    for (size_t r = 0; r < in_.reactors.size(); ++r) {
      next_ = 0;
      in_.reactors[r].for_each([&](std::string_view, const MetricDef& def, const auto& value) {
        if (!def.prometheus.empty()) add(r, def, value);
      });
    }
    return std::move(families_);
  }

 private:
  // The family of this row: rows come in the same order for every reactor,
  // so the n-th exposed row of each reactor finds its family by position.
  MetricFamily& family_for(const MetricDef& def) {
    if (next_ < order_.size()) return families_[order_[next_++]];
    if (families_.empty() || families_.back().name != def.prometheus)
      families_.push_back(
          {std::string(def.prometheus), std::string(def.help), prometheus_type(def.kind), {}});
    order_.push_back(families_.size() - 1);
    ++next_;
    return families_.back();
  }
  Labels labels(size_t r, const MetricDef& def, size_t i) const {
    Labels out{{"reactor", r < in_.labels.size() ? in_.labels[r] : std::to_string(r)}};
    if (!def.labels.name.empty())
      out.push_back({std::string(def.labels.name), std::string(def.labels.value_at(i))});
    return out;
  }

  void add(size_t r, const MetricDef& def, uint64_t value) {
    family_for(def).metric.push_back(scalar(def.kind, labels(r, def, 0), exposed(def.kind, value)));
  }
  template <size_t N>
  void add(size_t r, const MetricDef& def, const std::array<uint64_t, N>& values) {
    MetricFamily& family = family_for(def);
    for (size_t i = 0; i < def.labels.count && i < N; ++i)
      family.metric.push_back(scalar(def.kind, labels(r, def, i), exposed(def.kind, values[i])));
  }
  void add(size_t r, const MetricDef& def, const HistogramSnapshot& h) {
    family_for(def).metric.push_back(histogram(labels(r, def, 0), h));
  }

  const ScrapeInput& in_;
  std::vector<MetricFamily> families_;
  std::vector<size_t> order_;  // exposed row -> its family
  size_t next_ = 0;
};

void single(std::vector<MetricFamily>& families, std::string_view name, std::string_view help,
            MetricKind kind, double value, Labels labels = {}) {
  families.push_back({std::string(name),
                      std::string(help),
                      prometheus_type(kind),
                      {scalar(kind, std::move(labels), value)}});
}

void process_families(std::vector<MetricFamily>& families, const ScrapeInput& in) {
  const ProcessStats& p = in.process;
#define FLUX_PROCESS_FAMILY(field, type, kind, name, help) \
  single(families, name, help, MetricKind::kind, double(p.field));
  FLUX_PROCESS_METRICS(FLUX_PROCESS_FAMILY)
#undef FLUX_PROCESS_FAMILY
  single(families, kBuildInfoName, kBuildInfoHelp, MetricKind::kGauge, 1.0,
         {{"version", in.version}, {"node", std::to_string(in.node_id)}});
}

}  // namespace

std::vector<MetricFamily> build_metric_families(const ScrapeInput& input) {
  std::vector<MetricFamily> families = ReactorFamilies(input).build();
  process_families(families, input);
  return families;
}

std::string serialize_metrics(const std::vector<MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace flux
