#pragma once
// ReactorContext: what every connection of one reactor shares: the event
// base, the pools, the timeouts, the metrics block. Owned by the Reactor;
// connections hold a reference and never outlive it.
//
// Thread contract: reactor thread only (the metrics block is also read by
// other threads, see metrics/reactor_metrics.h).

#include <event2/event.h>

#include <span>
#include <string_view>
#include <vector>

#include "gateway/buffer_pool.h"
#include "gateway/connection_handoff.h"
#include "gateway/loop_clock.h"
#include "gateway/options.h"
#include "gateway/out_queue.h"
#include "gateway/output_budget.h"
#include "gateway/session_id.h"
#include "gateway/timer.h"
#include "metrics/reactor_metrics.h"

namespace flux {

class Connection;
class SessionStore;
class SessionTable;

// The reactor side of a connection's lifetime: a connection reports that it
// has closed, and the owner destroys it later, at a safe point outside any
// of its callbacks (never `delete this` from inside a callback).
class ConnectionOwner {
 public:
  virtual void on_connection_closed(Connection& connection) noexcept = 0;

 protected:
  ~ConnectionOwner() = default;
};

inline constexpr unsigned kSlowConsumerClosesPerTurn = 16;

struct ReactorContext {
  event_base* base;
  const Options& options;
  ReactorMetrics& metrics;
  BufferPool& blocks;
  FrameNodePool& frame_nodes;
  SessionTable& sessions;
  ConnectionRouter& router;  // resumes of sessions another reactor owns
  LoopClock& loop_clock;
  const char* reactor_label;  // "0", "1", ...: the `reactor` label of its metrics
  CommonTimeout handshake_timeout;
  CommonTimeout idle_timeout;
  CommonTimeout linger;
  CommonTimeout write_timeout;  // --write-timeout: no output progress this long
  OutputBudget& output_budget;  // this reactor's share of --max-pending-total
  // Bytes read this loop turn by all connections, against kTurnReadFactor x
  // --read-budget-bytes (reset by the reactor before each turn).
  uint64_t read_this_turn = 0;
  // Slow consumers closed this loop turn, against kSlowConsumerClosesPerTurn:
  // closing a socket with megabytes queued costs the kernel about a
  // millisecond, and hundreds of write deadlines can expire at once.
  unsigned slow_closes_this_turn = 0;
  CommonTimeout retry_soon;  // 1 ms: a close that did not fit this turn
  // Where CLOSING connections read input only to throw it away.
  std::span<std::byte> discard_scratch;
  // --session-store redis://: this reactor's store (null with memory), and
  // the payloads of the read being processed, on their way to it.
  SessionStore* store = nullptr;
  std::vector<std::string_view> store_batch;
};

}  // namespace flux
