#pragma once
// ReactorMetrics: one reactor's vital signs as plain atomics, and
// ReactorSnapshot, a reader's plain copy of them. Both are generated from
// metrics/metric_table.h: the fields below are its rows.
//
// Thread contract: the reactor thread is the ONLY writer; any thread may
// read (SingleWriterU64, LatencyHistogram: relaxed atomics, no lock).
//
// Each group sits on its own cache line so that the metrics thread reading
// one group does not bounce the line the reactor is writing.

#include <cstdint>
#include <string_view>

#include "metrics/metric_def.h"
#include "metrics/metric_table.h"

namespace flux {

// clang-format off
#define FLUX_LIVE_FIELD(field, kind, labels, name, help) \
  LiveCell<MetricKind::kind, decltype(labels)> field;
#define FLUX_COPY_FIELD(field, kind, labels, name, help) \
  CopyCell<MetricKind::kind, decltype(labels)> field{};
#define FLUX_READ_FIELD(field, kind, labels, name, help) field = read_cell(live.field);
#define FLUX_MERGE_FIELD(field, kind, labels, name, help) \
  merge_into<MetricKind::kind>(field, other.field);
#define FLUX_VISIT_FIELD(field, kind, labels, name, help) \
  visit(MetricDef{MetricKind::kind, #field, name, help, describe(labels)}, field);

// A group of live cells: ConnectionMetrics, TrafficMetrics, ...
#define FLUX_LATENCY_MEMBER(field, kind, labels, name, help) \
  visit(MetricDef{MetricKind::kind, #field, name, help, describe(labels)}, &ReactorSnapshot::field);

#define FLUX_LIVE_GROUP(member, Live, Copy, ROWS) \
  struct alignas(64) Live {                       \
    ROWS(FLUX_LIVE_FIELD)                         \
  };
// Its copy: read from the live group, merged with another copy, and visited
// row by row (MetricDef, value) by the exposition.
#define FLUX_COPY_GROUP(member, Live, Copy, ROWS)                             \
  struct Copy {                                                               \
    ROWS(FLUX_COPY_FIELD)                                                     \
    void read(const Live& live) noexcept { ROWS(FLUX_READ_FIELD) }            \
    void merge(const Copy& other) noexcept { ROWS(FLUX_MERGE_FIELD) }         \
    template <typename Visit>                                                 \
    void for_each(Visit&& visit) const { ROWS(FLUX_VISIT_FIELD) }             \
  };
#define FLUX_LIVE_MEMBER(member, Live, Copy, ROWS) Live member;
#define FLUX_COPY_MEMBER(member, Live, Copy, ROWS) Copy member;
#define FLUX_READ_MEMBER(member, Live, Copy, ROWS) member.read(live.member);
#define FLUX_MERGE_MEMBER(member, Live, Copy, ROWS) member.merge(other.member);
#define FLUX_VISIT_MEMBER(member, Live, Copy, ROWS) \
  member.for_each([&](const MetricDef& def, const auto& value) { visit(#member, def, value); });
// clang-format on

FLUX_METRIC_GROUPS(FLUX_LIVE_GROUP)
FLUX_METRIC_GROUPS(FLUX_COPY_GROUP)

struct ReactorMetrics {
  FLUX_METRIC_GROUPS(FLUX_LIVE_MEMBER)
  FLUX_LATENCY_METRICS(FLUX_LIVE_FIELD)
};

// The /stats group of the histograms (ReactorMetrics' own members).
inline constexpr std::string_view kLatencyGroup = "latency_seconds";

// A plain copy of one reactor's metrics, taken by a reader thread.
struct ReactorSnapshot {
  FLUX_METRIC_GROUPS(FLUX_COPY_MEMBER)
  FLUX_LATENCY_METRICS(FLUX_COPY_FIELD)

  void read(const ReactorMetrics& live) noexcept {
    FLUX_METRIC_GROUPS(FLUX_READ_MEMBER)
    FLUX_LATENCY_METRICS(FLUX_READ_FIELD)
  }
  // Adds another reactor's figures (the "total" view); last_turn keeps the oldest.
  void merge(const ReactorSnapshot& other) noexcept {
    FLUX_METRIC_GROUPS(FLUX_MERGE_MEMBER)
    FLUX_LATENCY_METRICS(FLUX_MERGE_FIELD)
  }
  // Every row of the table in order, as visit(group, MetricDef, value):
  // value is a uint64_t, a std::array<uint64_t, N> or a HistogramSnapshot.
  template <typename Visit>
  void for_each(Visit&& visit) const {
    FLUX_METRIC_GROUPS(FLUX_VISIT_MEMBER)
    for_each_latency([&](const MetricDef& def, HistogramSnapshot ReactorSnapshot::*member) {
      visit(kLatencyGroup, def, this->*member);
    });
  }
  // The histogram rows only, as visit(MetricDef, member pointer), so that
  // one row can be read from several snapshots (windows).
  template <typename Visit>
  static void for_each_latency(Visit&& visit){FLUX_LATENCY_METRICS(FLUX_LATENCY_MEMBER)}

  // Views derived from the rows.
  uint64_t open_connections() const noexcept;
  uint64_t closed_connections() const noexcept;
};

#undef FLUX_LIVE_FIELD
#undef FLUX_COPY_FIELD
#undef FLUX_READ_FIELD
#undef FLUX_MERGE_FIELD
#undef FLUX_VISIT_FIELD
#undef FLUX_LATENCY_MEMBER
#undef FLUX_LIVE_GROUP
#undef FLUX_COPY_GROUP
#undef FLUX_LIVE_MEMBER
#undef FLUX_COPY_MEMBER
#undef FLUX_READ_MEMBER
#undef FLUX_MERGE_MEMBER
#undef FLUX_VISIT_MEMBER

ReactorSnapshot snapshot(const ReactorMetrics& metrics) noexcept;

}  // namespace flux
