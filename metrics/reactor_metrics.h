#pragma once
// ReactorMetrics: one reactor's vital signs as plain atomics.
//
// Thread contract: the reactor thread is the ONLY writer; any thread may
// read. Because there is a single writer, an update is a relaxed load plus a
// relaxed store (no read-modify-write, no lock prefix, no contention); a
// reader may see a value one update behind, never a torn one.
//
// Each group sits on its own cache line so that the metrics thread reading
// one group does not bounce the line the reactor is writing.

#include <array>
#include <atomic>
#include <cstdint>

#include "gateway/protocol.h"
#include "gateway/proxy_header.h"
#include "metrics/histogram.h"

namespace flux {

// False only in the overhead-benchmark build (cmake -DFLUX_METRICS=OFF).
inline constexpr bool kMetricsEnabled = FLUX_METRICS_ENABLED != 0;

// A counter or gauge with exactly one writer thread.
class SingleWriterU64 {
 public:
  void add(uint64_t n = 1) noexcept {
    if constexpr (kMetricsEnabled) v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(uint64_t n = 1) noexcept {
    if constexpr (kMetricsEnabled) v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void set(uint64_t n) noexcept {
    if constexpr (kMetricsEnabled) v_.store(n, std::memory_order_relaxed);
  }
  uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

struct alignas(64) ConnectionMetrics {
  SingleWriterU64 accepted_total;
  SingleWriterU64 accept_errors_total;  // EMFILE, ENFILE, ENOBUFS, ENOMEM
  SingleWriterU64 accept_pauses_total;  // times accepting paused on fd exhaustion
  std::array<SingleWriterU64, kConnStateCount> by_state;  // gauges
  std::array<SingleWriterU64, kCloseReasonCount> closed_total;
  // --proxy-protocol: connections closed without reply for their header.
  std::array<SingleWriterU64, kProxyHeaderErrorCount> proxy_header_errors_total;
};

struct alignas(64) TrafficMetrics {
  SingleWriterU64 frames_in_total;
  SingleWriterU64 frames_out_total;
  SingleWriterU64 bytes_in_total;   // payload + header bytes read
  SingleWriterU64 bytes_out_total;  // bytes handed to the kernel
  SingleWriterU64 bytes_queued;     // gauge: output not yet written, all connections
  SingleWriterU64 backpressure_pauses_total;
  std::array<SingleWriterU64, kErrorCodeCount> protocol_errors_total;
};

struct alignas(64) PoolMetrics {
  SingleWriterU64 block_acquires_total;
  // The "buffer allocation rate": every time a pool had to go to the heap.
  SingleWriterU64 block_allocations_total;
  SingleWriterU64 frame_node_allocations_total;
  // Memory given back by the pools' decay (blocks / frame-node chunks freed).
  SingleWriterU64 block_releases_total;
  SingleWriterU64 frame_node_releases_total;
  SingleWriterU64 block_bytes_in_use;  // gauge
  SingleWriterU64 block_bytes_free;    // gauge
};

// The event loop itself. One iteration runs from the instant epoll_wait
// returns to the instant the next epoll_wait begins ("busy", as Envoy's
// loop_duration_us and Redis's eventloop_duration_sum define it); the
// time blocked in epoll_wait is "poll wait". busy + poll = wall time.
struct alignas(64) LoopMetrics {
  SingleWriterU64 iterations_total;
  SingleWriterU64 busy_ns_total;
  SingleWriterU64 poll_ns_total;
  SingleWriterU64 last_turn_monotonic_ns;  // stamped by the lag timer: /healthz
  SingleWriterU64 voluntary_switches_total;    // getrusage(RUSAGE_THREAD)
  SingleWriterU64 involuntary_switches_total;
};

struct alignas(64) SessionMetrics {
  SingleWriterU64 attached;             // gauge
  SingleWriterU64 detached;             // gauge: waiting for a resume
  SingleWriterU64 replay_memory_bytes;  // gauge: blocks held by replay buffers
  SingleWriterU64 replay_frame_bytes;   // gauge: header + payload bytes kept
  SingleWriterU64 created_total;
  SingleWriterU64 frames_replayed_total;
  SingleWriterU64 expired_total;
  SingleWriterU64 evicted_total;  // dropped for --replay-memory
  std::array<SingleWriterU64, kResumeResultCount> resumes_total;
};

struct ReactorMetrics {
  ConnectionMetrics connections;
  TrafficMetrics traffic;
  PoolMetrics pool;
  LoopMetrics loop;
  SessionMetrics sessions;
  LatencyHistogram poll_wait;
  LatencyHistogram loop_busy;
  LatencyHistogram loop_lag;      // how late the 100 ms tick fires
  LatencyHistogram echo_latency;  // frame fully read -> echo handed to the kernel
};

// A plain copy of one reactor's metrics, taken by a reader thread.
struct ReactorSnapshot {
  uint64_t accepted_total = 0, accept_errors_total = 0, accept_pauses_total = 0;
  std::array<uint64_t, kConnStateCount> by_state{};
  std::array<uint64_t, kCloseReasonCount> closed_total{};
  std::array<uint64_t, kProxyHeaderErrorCount> proxy_header_errors_total{};
  uint64_t frames_in_total = 0, frames_out_total = 0, bytes_in_total = 0, bytes_out_total = 0;
  uint64_t bytes_queued = 0, backpressure_pauses_total = 0;
  std::array<uint64_t, kErrorCodeCount> errors_sent_total{};
  uint64_t block_acquires_total = 0, block_allocations_total = 0, frame_node_allocations_total = 0;
  uint64_t block_releases_total = 0, frame_node_releases_total = 0;
  uint64_t block_bytes_in_use = 0, block_bytes_free = 0;
  uint64_t iterations_total = 0, busy_ns_total = 0, poll_ns_total = 0, last_turn_monotonic_ns = 0;
  uint64_t voluntary_switches_total = 0, involuntary_switches_total = 0;
  uint64_t sessions_attached = 0, sessions_detached = 0, replay_memory_bytes = 0;
  uint64_t replay_frame_bytes = 0, sessions_created_total = 0, frames_replayed_total = 0;
  uint64_t sessions_expired_total = 0, sessions_evicted_total = 0;
  std::array<uint64_t, kResumeResultCount> resumes_total{};
  HistogramSnapshot poll_wait, loop_busy, loop_lag, echo_latency;

  uint64_t open_connections() const noexcept;
  uint64_t closed_connections() const noexcept;
  uint64_t buffer_allocations_total() const noexcept {
    return block_allocations_total + frame_node_allocations_total;
  }
  uint64_t buffer_releases_total() const noexcept {
    return block_releases_total + frame_node_releases_total;
  }
  // Adds another reactor's figures (the "total" view); last_turn keeps the oldest.
  void merge(const ReactorSnapshot& other) noexcept;
};

ReactorSnapshot snapshot(const ReactorMetrics& metrics) noexcept;

}  // namespace flux
