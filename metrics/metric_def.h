#pragma once
// The vocabulary of metrics/metric_table.h: what one row of the table
// declares, and the storage each row turns into.
//
//   X(field, kind, labels, "prometheus_name", "help")
//
// One row gives, with nothing else written by hand:
//   - the live cell the reactor writes (Cells<>::Live: a SingleWriterU64, an
//     array of them indexed by an enum, or a LatencyHistogram),
//   - the snapshot's plain copy of it (Cells<>::Copy) and how two copies
//     merge into the "total" view (merge_into),
//   - its exposition: Prometheus name, help, type and labels (MetricDef), and
//     its /stats key (MetricDef::stats_key: the field's own name).
//
// Thread contract: SingleWriterU64 has one writer thread; everything else
// here is constant or plain data.

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "metrics/histogram.h"

namespace flux {

// False only in the overhead-benchmark build (cmake -DFLUX_METRICS=OFF).
inline constexpr bool kMetricsEnabled = FLUX_METRICS_ENABLED != 0;

// A counter or gauge with exactly one writer thread. Because there is a
// single writer, an update is a relaxed load plus a relaxed store (no
// read-modify-write, no lock prefix, no contention); a reader may see a value
// one update behind, never a torn one.
class SingleWriterU64 {
 public:
  void add(uint64_t n = 1) noexcept {
    if constexpr (kMetricsEnabled)
      v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) noexcept {
    if constexpr (kMetricsEnabled)
      v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void set(uint64_t n) noexcept {
    if constexpr (kMetricsEnabled) v_.store(n, std::memory_order_relaxed);
  }
  uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

enum class MetricKind : uint8_t {
  kCounter,      // only grows
  kGauge,        // goes up and down; the total view sums it
  kNanoseconds,  // a counter of nanoseconds, exposed in seconds: its field ends
                 // in "_ns..." and its /stats key says "_seconds..." instead
  kHistogram,    // a LatencyHistogram (nanoseconds, exposed in seconds)
  kStamp,        // a CLOCK_MONOTONIC instant, not exposed as such; the total
                 // view keeps the oldest
};

// ---------------------------------------------------------------- labels

// A row with one series per reactor.
struct Unlabelled {};
inline constexpr Unlabelled kUnlabelled{};

// A row that is one series of a family it shares with the rows next to it
// (same Prometheus name), told apart by this label.
struct FixedLabel {
  std::string_view name, value;
};
constexpr FixedLabel label(std::string_view name, std::string_view value) {
  return {name, value};
}

// How many values an enum used as a label has (specialized next to the
// table for every label enum).
template <typename Enum>
inline constexpr size_t kEnumCount = 0;

// A row with one series per value of an enum, stored as an array indexed by
// it; the first `exposed` values are exposed (a state that is never counted
// can be left out).
template <typename Enum>
struct EnumLabel {
  std::string_view name;
  size_t exposed = kEnumCount<Enum>;
};
template <typename Enum>
constexpr EnumLabel<Enum> by(std::string_view name, size_t exposed = kEnumCount<Enum>) {
  return {name, exposed};
}

// Any label set, as the exposition sees it.
struct LabelDef {
  std::string_view name;                        // empty: no label
  size_t count = 1;                             // series per reactor
  std::string_view fixed;                       // FixedLabel's value
  std::string_view (*value)(size_t) = nullptr;  // EnumLabel: the i-th value
  bool is_enum() const noexcept { return value != nullptr; }
  std::string_view value_at(size_t i) const { return value ? value(i) : fixed; }
};
constexpr LabelDef describe(Unlabelled) {
  return {};
}
constexpr LabelDef describe(FixedLabel l) {
  return {l.name, 1, l.value, nullptr};
}
template <typename Enum>
constexpr LabelDef describe(EnumLabel<Enum> l) {
  return {l.name, l.exposed, {}, [](size_t i) { return to_string(static_cast<Enum>(i)); }};
}

// ---------------------------------------------------------------- a row

struct MetricDef {
  MetricKind kind;
  std::string_view field;       // the C++ member, e.g. "closed_total"
  std::string_view prometheus;  // the family name; empty for kStamp
  std::string_view help;        // empty: the family of the row above continues
  LabelDef labels;

  // The key in /stats: the field's name, in seconds where it counts ns.
  std::string stats_key() const {
    std::string key(field);
    if (kind == MetricKind::kNanoseconds)
      if (auto at = key.find("_ns"); at != std::string::npos) key.replace(at, 3, "_seconds");
    return key;
  }
};

// ---------------------------------------------------------------- storage

template <MetricKind Kind, typename Labels>
struct Cells {
  using Live = SingleWriterU64;
  using Copy = uint64_t;
};
template <MetricKind Kind, typename Enum>
struct Cells<Kind, EnumLabel<Enum>> {
  using Live = std::array<SingleWriterU64, kEnumCount<Enum>>;
  using Copy = std::array<uint64_t, kEnumCount<Enum>>;
};
template <>
struct Cells<MetricKind::kHistogram, Unlabelled> {
  using Live = LatencyHistogram;
  using Copy = HistogramSnapshot;
};

// The cells of a row, from its kind and its label expression.
template <MetricKind Kind, typename Labels>
using LiveCell = typename Cells<Kind, std::remove_cvref_t<Labels>>::Live;
template <MetricKind Kind, typename Labels>
using CopyCell = typename Cells<Kind, std::remove_cvref_t<Labels>>::Copy;

inline uint64_t read_cell(const SingleWriterU64& cell) noexcept {
  return cell.get();
}
template <size_t N>
std::array<uint64_t, N> read_cell(const std::array<SingleWriterU64, N>& cells) noexcept {
  std::array<uint64_t, N> out{};
  for (size_t i = 0; i < N; ++i) out[i] = cells[i].get();
  return out;
}
inline HistogramSnapshot read_cell(const LatencyHistogram& histogram) noexcept {
  return histogram.snapshot();
}

// Adds another reactor's copy into the total view.
template <MetricKind Kind>
void merge_into(uint64_t& into, uint64_t from) noexcept {
  if constexpr (Kind == MetricKind::kStamp)
    into = std::min(into, from);  // the reactor that turned least recently
  else
    into += from;
}
template <MetricKind Kind, size_t N>
void merge_into(std::array<uint64_t, N>& into, const std::array<uint64_t, N>& from) noexcept {
  for (size_t i = 0; i < N; ++i) into[i] += from[i];
}
template <MetricKind Kind>
void merge_into(HistogramSnapshot& into, const HistogramSnapshot& from) noexcept {
  into.merge(from);
}

}  // namespace flux
