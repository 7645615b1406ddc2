#pragma once
// RESERVED: the resume mode, `--churn RATE` (issue 4), added when sessions land.
//
// Nothing of it exists yet; this file marks the one place it will live, so
// that the closed/open loop code stays as it is. The plan:
//   - every READY connection keeps the session id from FLUX_READY and counts
//     the data frames it received (its `last-seq`);
//   - RATE times per second (over all threads) a worker picks a connection,
//     closes it abruptly (no FLUX_BYE), reconnects from the same source
//     address and sends FLUX_RESUME <session-id> <last-seq>;
//   - it expects FLUX_READY <session-id> <seq>, then exactly the frames
//     last-seq+1 .. seq, byte for byte (the SentLog still holds what was in
//     flight), then resumes its schedule; open-loop frames due while the
//     connection was down are sent late and measured from their intended
//     time, like any other;
//   - FLUX_INVALID of any kind, or a missing/extra/reordered replayed frame,
//     is an error; counters: resumes_total, resume_failures_total,
//     replayed_frames_total, and a resume-latency histogram.
// Hooks: Options::churn_rate (parsed, refused today), Worker::run_timers().

namespace flux::bench {

inline constexpr bool kChurnAvailable = false;

}  // namespace flux::bench
