#pragma once
// RunControl: the run's timeline, shared by the main thread and the workers.
//
//   connect phase --start_ns--> warm-up --warm_end--> measured --end--> drain --say_bye--> goodbye
//   --hard_stop (paced connects,            (traffic,             (traffic,        (no new frames;
//   (FLUX_BYE on
//    handshakes)                 not measured)         measured)        last echoes)         every
//    connection)
//
// The main thread publishes `ready_total` and then `start_ns` (release) once
// every connection is ready or failed, or the connect budget is spent;
// workers poll `start_ns` (acquire) and derive the rest from the options.
// `say_bye` comes once no frame is in flight on any worker (or half the grace
// has passed): thousands of goodbyes and closes must not delay the last
// measured echoes of another connection or another worker.
// `stop` (SIGINT/SIGTERM) makes every worker close up at once.
//
// Thread contract: any thread; each field has one writer, the main thread.

#include <atomic>
#include <cstdint>

namespace flux::bench {

struct RunControl {
  uint64_t connect_deadline_ns = 0;      // set before the workers start
  std::atomic<uint64_t> ready_total{0};  // connections ready at start (open-loop pacing)
  std::atomic<uint64_t> start_ns{0};     // 0 until traffic starts
  std::atomic<bool> say_bye{false};      // drained: connections may say FLUX_BYE
  std::atomic<bool> stop{false};
};

// The phase boundaries, once start_ns is known.
struct Timeline {
  uint64_t start_ns = 0;
  uint64_t warm_end_ns = 0;
  uint64_t end_ns = 0;
  uint64_t hard_stop_ns = 0;

  static Timeline from(uint64_t start, uint64_t warmup, uint64_t duration, uint64_t grace) {
    return {start, start + warmup, start + warmup + duration, start + warmup + duration + grace};
  }
  bool measured(uint64_t t) const noexcept { return t >= warm_end_ns && t < end_ns; }
};

}  // namespace flux::bench
