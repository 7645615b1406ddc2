#pragma once
// The resume mode, `fluxbench --churn RATE` (docs/protocol.md sections 7-8).
//
// RATE drops per second over all threads, each worker taking its share
// (RATE x its connections / all connections), on a fixed schedule during
// warm-up and the measured window. Each drop picks the worker's next READY
// connection round-robin and:
//   1. resets it: SO_LINGER {1, 0}, close (RST; no FLUX_BYE);
//   2. reconnects at once from the same source address (RECONNECTING) and
//      sends FLUX_RESUME <session-id> <last-seq> (RESUMING), where last-seq
//      is the number of echoes (data frames of the session) it received;
//   3. expects FLUX_READY <session-id> <seq> with last-seq <= seq <= the
//      last counter sent: echoes last-seq+1 .. seq are the server's replay
//      and arrive next, checked like any echo (same order, same bytes);
//   4. frames seq+1 .. last sent were never read by the server (they died
//      with the old socket): they are sent again at once, same counter and
//      stamp, before any new frame; then the connection is READY again
//      (closed loop: the window is topped up; open loop: frames due while
//      the connection was down leave late and are measured from their
//      intended time, like any other).
// So every counter is echoed exactly once and in order across the drops;
// a gap, a duplicate or a reordering is a mismatch, a frame never echoed is
// lost, and FLUX_INVALID (or a reconnect that fails or takes longer than
// --connect-timeout) is a resume failure: each makes the run fail.
// Counted: drops, resumes, resume failures, replayed and re-sent frames, and
// the resume latency (drop -> FLUX_READY received) as a histogram.
// Code: Worker::churn_tick(), drop(), on_reconnected(), on_resume_reply().
//
// `--resume-on-close` (with or without --churn): a READY connection that the
// server ends without FLUX_BYE (EOF or reset: its node was killed, and the
// balancer closed the client's side) goes through steps 2-4 as if it had
// been dropped, counted as server_closes instead of drops. With a session
// store that outlives the node (--session-store redis), every such session
// must resume elsewhere with nothing lost, duplicated or reordered.
// Code: Worker::resumes_on_close(), server_closed(), reconnect().

namespace flux::bench {

inline constexpr bool kChurnAvailable = true;

}  // namespace flux::bench
