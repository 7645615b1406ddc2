#pragma once
// WorkerCounters: what one worker has seen, as single-writer atomics.
//
// The worker thread is the only writer (relaxed load + store, no RMW); the
// main thread reads them for the progress line and the final report.
// Cache-line aligned so two workers never share a line.

#include <atomic>
#include <cstdint>

namespace flux::bench {

class Counter {
 public:
  void add(uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct alignas(64) WorkerCounters {
  // Connections
  Counter ready;             // handshakes completed
  Counter connect_failed;    // socket/bind/connect errors, connect timeouts
  Counter handshake_failed;  // no or wrong FLUX_READY (refusals, timeouts, EOF)
  Counter closed_by_server;  // READY connections the server closed or reset
  Counter closed_clean;      // ended by FLUX_BYE / FLUX_BYE
  Counter resolved;          // connections that are ready or failed (connect phase)
  // Frames
  Counter sent;               // data frames written
  Counter received;           // echoes verified
  Counter received_measured;  // echoes received inside the measured window
  Counter bytes_measured;     // their payload bytes
  Counter mismatched;         // echoes that differ from what was sent, or out of order
  Counter lost;               // sent, never echoed (connection closed or hard stop)
  Counter unsent;             // open loop: due before the end, never sent (hard stop)
  Counter server_errors;      // FLUX_ERROR or other unexpected control frames in READY
  Counter oversized;          // frames larger than any reply could be (stream abandoned)
  // --churn (churn.h)
  Counter drops;            // connections reset on purpose (RST)
  Counter resumes;          // FLUX_READY <id> <seq> received after a drop
  Counter resume_failures;  // FLUX_INVALID, or the reconnect/resume failed or timed out
  Counter replayed;         // echoes that came from the server's replay buffer
  Counter resent;           // frames the server never read, sent again after a resume
  Counter server_closes;    // --resume-on-close: READY connections the server ended, resumed
  Counter resume_retries;   // --resume-on-close: resumes the server closed unanswered, tried again
};

}  // namespace flux::bench
