#pragma once
// Connection: one client connection's state, as its worker sees it.
//
//   IDLE --start_connect--> CONNECTING --writable, SO_ERROR 0, send HELLO--> HANDSHAKING
//   HANDSHAKING --FLUX_READY <id> 0--> READY --traffic over, nothing in flight, send BYE-->
//   BYE_SENT BYE_SENT --FLUX_BYE or EOF--> DONE any state --error, EOF, mismatch, timeout, hard
//   stop--> DONE (counted by cause)
//
// Frames in flight are `sent` (their send times, oldest first); the next
// echo must carry counter `expect_counter` and the send time sent.front().
// Open loop: frame k (counting from 1) is due at
//   intended_ns(k) = sched_base_ns + (k - 1) * period_ns
// whether or not frame k-1 has left, so lateness is charged to latency.
//
// Thread contract: owned and touched by one worker thread only.

#include <cstdint>
#include <string>
#include <vector>

#include "bench/fluxbench/frame_reader.h"
#include "bench/fluxbench/sent_log.h"
#include "common/fd.h"

namespace flux::bench {

// --churn adds READY --drop (RST)--> RECONNECTING --connected, send FLUX_RESUME-->
// RESUMING --FLUX_READY <id> <seq>--> READY (see churn.h).
enum class ConnState : uint8_t {
  kIdle,
  kConnecting,
  kHandshaking,
  kReady,
  kByeSent,
  kDone,
  kReconnecting,
  kResuming
};

const char* to_string(ConnState state) noexcept;

struct Connection {
  Fd fd;
  ConnState state = ConnState::kIdle;
  bool write_armed = false;  // EPOLLOUT registered
  bool scheduled = false;    // open loop: has an entry in the worker's timer heap
  uint32_t global_index = 0;
  uint64_t deadline_ns = 0;  // end of connect + handshake

  uint64_t next_counter = 1;    // counter of the next frame to send
  uint64_t expect_counter = 1;  // counter of the next echo
  SentLog sent;
  FrameReader reader;
  std::vector<uint8_t> out;  // written bytes the kernel has not taken yet
  size_t out_off = 0;

  // --churn: the session (from FLUX_READY), when this connection was last
  // dropped, and how many echoes of the current resume are still replays.
  std::string session_id;
  uint64_t dropped_ns = 0;
  uint64_t replay_left = 0;
  unsigned resume_retries = 0;  // of the current resume (--resume-on-close)

  uint64_t sched_base_ns = 0;  // open loop schedule
  double period_ns = 0;

  bool open() const noexcept { return state != ConnState::kIdle && state != ConnState::kDone; }
  bool out_pending() const noexcept { return out_off < out.size(); }
  uint64_t intended_ns(uint64_t counter) const noexcept {
    return sched_base_ns + static_cast<uint64_t>(static_cast<double>(counter - 1) * period_ns);
  }
  // Open loop: how many frames are due before `end_ns` in all.
  uint64_t frames_due_before(uint64_t end_ns) const noexcept;
};

}  // namespace flux::bench
