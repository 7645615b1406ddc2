#pragma once
// Log-linear histogram buckets, HdrHistogram style, shared by the gateway's
// metrics (metrics/histogram.h: 32 sub-buckets, up to ~68.7 s) and fluxbench
// (bench/fluxbench/histogram.h: 128 sub-buckets, < 0.8 % error). Header only
// and free of gateway code, so that bench/ does not depend on metrics/.
//
// Below 2^SubBits every value has its own bucket. Above, each power of two
// [2^e, 2^(e+1)) is cut into 2^SubBits equal sub-buckets, so a bucket is never
// wider than 1/2^SubBits of its lowest value, up to 2^MaxExponent (larger
// values share the last bucket).
//
//   index:  0 .. S-1 | S .. 2S-1         | 2S .. 3S-1        | ...
//   value:  0 .. S-1 | [S,2S) step 1     | [2S,4S) step 2    | ...   (S = 2^SubBits)
//
// LogLinearLayout   the bucket maths (constexpr).
// RelaxedBuckets    the buckets, sum and max as relaxed atomics: one writer
//                   thread, readers on any thread, no locks, no RMW.
// bucket_at_rank    the bucket holding the rank-th smallest value.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace flux {

template <unsigned SubBits, unsigned MaxExponent>
struct LogLinearLayout {
  static_assert(SubBits >= 1 && MaxExponent > SubBits && MaxExponent < 64);
  static constexpr unsigned kSubBits = SubBits;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << SubBits;
  static constexpr size_t kBuckets = static_cast<size_t>(kSubBuckets * (MaxExponent - SubBits + 1));

  static constexpr size_t index(uint64_t v) noexcept {
    if (v < kSubBuckets) return static_cast<size_t>(v);
    const unsigned exponent = 63u - static_cast<unsigned>(__builtin_clzll(v));  // >= SubBits
    const uint64_t sub = (v >> (exponent - SubBits)) & (kSubBuckets - 1);
    const auto i = static_cast<size_t>(kSubBuckets * (exponent - SubBits + 1) + sub);
    return i < kBuckets ? i : kBuckets - 1;
  }
  // The smallest value that maps to `i` (i may be kBuckets: one past the last).
  static constexpr uint64_t lowest(size_t i) noexcept {
    if (i < kSubBuckets) return i;
    const uint64_t exponent = i / kSubBuckets - 1 + SubBits;
    const uint64_t sub = i % kSubBuckets;
    return (kSubBuckets + sub) << (exponent - SubBits);
  }
  // The largest value that maps to `i` (HdrHistogram's "highest equivalent").
  static constexpr uint64_t highest(size_t i) noexcept { return lowest(i + 1) - 1; }
};

// The index of the bucket that holds the rank-th value (1-based) of `buckets`
// (any indexable of counts), or `size` when there are fewer values.
template <class Counts>
size_t bucket_at_rank(const Counts& buckets, size_t size, uint64_t rank) noexcept {
  uint64_t seen = 0;
  for (size_t i = 0; i < size; ++i) {
    seen += buckets[i];
    if (seen >= rank) return i;
  }
  return size;
}

// One writer adds with a relaxed load + store (no read-modify-write); any
// thread reads. A reader may miss the very latest record or see a bucket one
// behind the sum; it never sees a torn value.
inline void relaxed_add(std::atomic<uint64_t>& cell, uint64_t n) noexcept {
  cell.store(cell.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

template <class Layout>
class RelaxedBuckets {
 public:
  static constexpr size_t kBuckets = Layout::kBuckets;

  // Writer thread only.
  void record(uint64_t v, uint64_t times) noexcept {
    relaxed_add(buckets_[Layout::index(v)], times);
    relaxed_add(sum_, v * times);
    if (v > max_.load(std::memory_order_relaxed)) max_.store(v, std::memory_order_relaxed);
  }

  // Any thread: copies the counts into out[0, kBuckets) and returns their total.
  template <class Counts>
  uint64_t load(Counts& out) const noexcept {
    uint64_t total = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      out[i] = buckets_[i].load(std::memory_order_relaxed);
      total += out[i];
    }
    return total;
  }
  uint64_t sum() const noexcept { return sum_.load(std::memory_order_relaxed); }
  uint64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> max_{0};
};

}  // namespace flux
