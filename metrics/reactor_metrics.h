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

namespace flux {

// A counter or gauge with exactly one writer thread.
class SingleWriterU64 {
 public:
  void add(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  void set(uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
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
  SingleWriterU64 block_bytes_in_use;  // gauge
  SingleWriterU64 block_bytes_free;    // gauge
};

struct ReactorMetrics {
  ConnectionMetrics connections;
  TrafficMetrics traffic;
  PoolMetrics pool;
};

}  // namespace flux
