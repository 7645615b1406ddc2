#pragma once
// LoopActivity: what one reactor is doing right now, for the watchdog and
// the loop profile (metrics/stall_watchdog.h) to read from another thread.
//
//   word             the activity of the callback running (or `poll` while
//                    the loop waits in epoll_wait) and, for connection work,
//                    the connection's id: (id << 8) | activity
//   busy_since_ns    when the current iteration's first callback ran (the
//                    poll return LoopClock already reads)
//   poll_since_ns    when the loop last entered epoll_wait (the instant
//                    LoopClock already reads to close an iteration)
//   closed_busy_ns   busy_since_ns of the iteration poll_since_ns closed
//
// The reactor stores each of these once per callback (word) or once per
// iteration (the stamps): one relaxed (or release) store of a value it
// already has, no clock read, no lock, no allocation. The loop is busy
// while busy_since_ns > poll_since_ns.
//
// Thread contract: the reactor thread is the only writer; any thread reads.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace flux {

// Label values of the watchdog's activity_samples_total and stalls_total rows
// (metrics/metric_table.h):
// an interface, never renumber or rename.
enum class Activity : uint8_t {
  kPoll,      // blocked in epoll_wait (or between the poll and our first callback)
  kRead,      // a connection's read callback (parse, echo, flush)
  kWrite,     // a connection's write callback (EV_WRITE: flushing a backlog)
  kTimer,     // a connection's deadline: handshake, idle, linger, write timeout
  kAccept,    // the listener accepting (and starting) connections
  kTask,      // a task posted from another thread (listings, hand-offs)
  kTick,      // the 100 ms tick: loop lag, pool decay, getrusage
  kSession,   // session work: a detached session's expiry
  kReap,      // between iterations: destroying closed connections and sessions
  kShutdown,  // beginning the graceful shutdown
  kStore,  // the session store (--session-store redis://): its answers and events, a turn's batch
};
inline constexpr size_t kActivityCount = 11;

constexpr std::string_view to_string(Activity a) noexcept {
  switch (a) {
    case Activity::kPoll:
      return "poll";
    case Activity::kRead:
      return "read";
    case Activity::kWrite:
      return "write";
    case Activity::kTimer:
      return "timer";
    case Activity::kAccept:
      return "accept";
    case Activity::kTask:
      return "task";
    case Activity::kTick:
      return "tick";
    case Activity::kSession:
      return "session";
    case Activity::kReap:
      return "reap";
    case Activity::kShutdown:
      return "shutdown";
    case Activity::kStore:
      return "store";
  }
  return "poll";
}

// Activities that name a connection (the word's id part is meaningful).
constexpr bool names_connection(Activity a) noexcept {
  return a == Activity::kRead || a == Activity::kWrite || a == Activity::kTimer;
}

constexpr uint64_t activity_word(Activity a, uint64_t connection_id = 0) noexcept {
  return (connection_id << 8) | static_cast<uint64_t>(a);
}
constexpr Activity word_activity(uint64_t word) noexcept {
  const auto a = static_cast<uint8_t>(word & 0xff);
  return a < kActivityCount ? static_cast<Activity>(a) : Activity::kPoll;
}
constexpr uint64_t word_connection(uint64_t word) noexcept {
  return word >> 8;
}

struct alignas(64) LoopActivity {
  std::atomic<uint64_t> word{activity_word(Activity::kPoll)};
  std::atomic<uint64_t> busy_since_ns{0};
  std::atomic<uint64_t> poll_since_ns{0};
  std::atomic<uint64_t> closed_busy_ns{0};

  // Reactor thread. Relaxed: a reader may see the previous activity for a
  // moment, which a sampler cannot tell from a sample taken a moment earlier.
  void set(Activity a, uint64_t connection_id = 0) noexcept {
    word.store(activity_word(a, connection_id), std::memory_order_relaxed);
  }
};

}  // namespace flux
