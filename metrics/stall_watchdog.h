#pragma once
// StallWatchdog: the thread (flux-stalls) that watches every reactor's
// activity word (metrics/loop_activity.h) from outside, for two things.
//
// Stalls. A reactor whose current loop iteration has been busy longer than
// --stall-threshold is stalled. The watchdog looks every threshold/4 (at
// most every 10 ms, at least every 250 us), so it sees every stall while
// it lasts, and notes what the word says then: the activity and, for
// connection work, the connection's id (its peer is then asked of the
// reactor, which answers once it turns again). A stall is counted once
// when first seen (the watchdog row stalls_total, by activity), shown in /stalls as
// "ongoing" while it lasts, and when it ends its duration is recorded
// (the row stall_duration) and it is reported once to `on_stall`
// (the gateway logs it). The end is exact when the watchdog's next look
// finds that the stalled iteration was the last one closed (the reactor
// publishes which one it closed); otherwise it is the last instant the
// watchdog saw it busy (one look early at most).
//
// The profile. At --profile-hz (default 97 Hz: prime, so never in step with
// the reactor's 100 ms tick) it counts what each word says into
// the row activity_samples_total, by activity: a statistical profile of the
// loop, whose shares /stats "profile" computes over 1 s and 10 s.
//
// Cost to the reactor: none beyond the stores LoopClock makes (no clock
// read, lock or allocation on its hot path); the watchdog only reads.
//
// Thread contract: construct, start() and stop() from one thread; recent()
// and json() from any thread; the watchdog thread is the one writer of each
// reactor's "watchdog" metric group.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "metrics/loop_activity.h"
#include "metrics/reactor_metrics.h"

namespace flux {

struct StallRecord {
  uint64_t seq = 0;  // 1, 2, ...: in order of detection
  size_t reactor_index = 0;
  std::string reactor;  // its label
  uint64_t start_monotonic_ns = 0;
  double start_unix_seconds = 0;
  double duration_seconds = 0;  // so far, while ongoing
  Activity activity = Activity::kPoll;
  uint64_t connection_id = 0;  // 0: the activity names no connection
  std::string peer;            // "" until the reactor has said (or if it has gone)
  bool ongoing = true;
  bool peer_known = false;  // asked and answered (or nothing to ask)
  bool reported = false;    // handed to on_stall
};

// What the watchdog may reach of one reactor.
struct WatchedReactor {
  std::string label;
  const ReactorMetrics* metrics = nullptr;  // the activity word, read
  WatchdogMetrics* cells = nullptr;         // its "watchdog" group, written
  // Any thread: the peer of connection `id` ("" if gone), handed to `done`
  // on the reactor's thread. May be empty (no peers then).
  std::function<void(uint64_t id, std::function<void(std::string)> done)> describe_connection;
};

struct StallWatchdogConfig {
  std::chrono::microseconds threshold{50'000};  // 0: no stall records
  unsigned profile_hz = 97;                     // 0: no profile
  size_t keep = 64;                             // records kept for /stalls
  // Once per stall, after it ended (and its peer is known): any thread.
  std::function<void(const StallRecord&)> on_stall;
};

class StallWatchdog {
 public:
  StallWatchdog(StallWatchdogConfig config, std::vector<WatchedReactor> reactors);
  ~StallWatchdog();
  StallWatchdog(const StallWatchdog&) = delete;
  StallWatchdog& operator=(const StallWatchdog&) = delete;

  // Starts the thread if stalls or the profile are on.
  void start();
  void stop();

  // The newest records first (at most config.keep), ongoing ones included.
  std::vector<StallRecord> recent() const;
  // GET /stalls: {"threshold_seconds": ..., "stalls": [...]}.
  std::string json(bool pretty) const;
  double threshold_seconds() const noexcept { return double(config_.threshold.count()) / 1e6; }

  // How often the watchdog looks for stalls, for this threshold.
  static std::chrono::nanoseconds look_interval(std::chrono::microseconds threshold) noexcept;

 private:
  struct Shared;  // the records, shared with peer answers that may come late
  struct Watch {  // per reactor, watchdog thread only
    bool in_stall = false;
    uint64_t busy_since = 0;       // of the stalled iteration
    uint64_t seen_busy_until = 0;  // the last look that found it still busy
    uint64_t last_stalled = 0;     // busy_since of the last stall (counted once)
    uint64_t seq = 0;
  };

  void run();
  void look(size_t r);
  void sample();
  void begin_stall(size_t r, uint64_t busy_since, uint64_t word, uint64_t now);
  void end_stall(size_t r, uint64_t end_ns);

  StallWatchdogConfig config_;
  std::vector<WatchedReactor> reactors_;
  std::vector<Watch> watches_;
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint64_t next_seq_ = 0;  // watchdog thread only
};

}  // namespace flux
