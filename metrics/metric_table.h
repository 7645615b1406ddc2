#pragma once
// Every metric of Flux, declared once.
//
// Each row is one metric; the reactor's fields, the snapshot, the merge into
// the total view, the Prometheus family (name, help, type, labels) and the
// /stats key are all generated from it (metrics/metric_def.h says how).
// Adding a metric is one row here plus the code that updates it; the README's
// metric list and docs/stats.md must name it too (tests/metrics/
// metric_docs_test.cc checks both against this table).
//
//   X(field, kind, labels, "prometheus_name", "help")
//
//   field   the C++ member the gateway writes (metrics.<group>.<field>) and,
//           as it is, the /stats key (<group>.<field>); a kNanoseconds field
//           says "_seconds" where it says "_ns", since /stats is in seconds
//   kind    kCounter, kGauge, kNanoseconds, kHistogram or kStamp
//   labels  kUnlabelled; by<Enum>("label"[, exposed]) for one series per
//           enum value; label("name", "value") for a row that is one series
//           of the family it shares with the next rows (same name; the
//           first row carries the help, the others an empty one)
//
// Prometheus names are an interface (Grafana dashboards and alerts use
// them): never rename one. Every flux_ series also carries reactor="<i>".
//
// Thread contract: none (declarations).

#include "common/protocol_enums.h"
#include "common/proxy_header_error.h"
#include "common/store_error.h"
#include "metrics/metric_def.h"

namespace flux {

// The enums used as labels, and how many values each has.
template <>
inline constexpr size_t kEnumCount<ConnState> = kConnStateCount;
template <>
inline constexpr size_t kEnumCount<CloseReason> = kCloseReasonCount;
template <>
inline constexpr size_t kEnumCount<ErrorCode> = kErrorCodeCount;
template <>
inline constexpr size_t kEnumCount<ResumeResult> = kResumeResultCount;
template <>
inline constexpr size_t kEnumCount<ProxyHeaderError> = kProxyHeaderErrorCount;
template <>
inline constexpr size_t kEnumCount<StoreError> = kStoreErrorCount;

}  // namespace flux

// clang-format off
// NOLINTBEGIN(cppcoreguidelines-macro-usage)

// ReactorMetrics::connections, /stats "connections".
#define FLUX_CONNECTION_METRICS(X)                                                                 \
  X(accepted_total, kCounter, kUnlabelled, "flux_connections_accepted_total",                     \
    "Connections accepted.")                                                                       \
  X(accept_errors_total, kCounter, kUnlabelled, "flux_accept_errors_total",                        \
    "accept4 failures for lack of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).")      \
  X(accept_pauses_total, kCounter, kUnlabelled, "flux_accept_pauses_total",                        \
    "Times accepting paused on descriptor exhaustion.")                                            \
  X(by_state, kGauge, by<ConnState>("state", kLiveConnStateCount), "flux_connections",            \
    "Open connections by protocol state.")                                                         \
  X(closed_total, kCounter, by<CloseReason>("reason"), "flux_connections_closed_total",           \
    "Connections closed, by reason.")                                                              \
  X(proxy_header_errors_total, kCounter, by<ProxyHeaderError>("reason"),                          \
    "flux_proxy_header_errors_total",                                                              \
    "Connections closed without reply for their PROXY protocol header (--proxy-protocol), by "    \
    "reason.")

// ReactorMetrics::traffic, /stats "traffic".
#define FLUX_TRAFFIC_METRICS(X)                                                                    \
  X(frames_in_total, kCounter, kUnlabelled, "flux_frames_received_total",                          \
    "Whole frames received from clients.")                                                         \
  X(frames_out_total, kCounter, kUnlabelled, "flux_frames_sent_total",                             \
    "Whole frames handed to the kernel.")                                                          \
  X(bytes_in_total, kCounter, kUnlabelled, "flux_received_bytes_total",                            \
    "Bytes read from client sockets.")                                                             \
  X(bytes_out_total, kCounter, kUnlabelled, "flux_sent_bytes_total",                               \
    "Bytes written to client sockets.")                                                            \
  X(bytes_queued, kGauge, kUnlabelled, "flux_output_queued_bytes",                                 \
    "Output queued and not yet written, all connections.")                                         \
  X(backpressure_pauses_total, kCounter, kUnlabelled, "flux_backpressure_pauses_total",            \
    "Times reading from a client paused because its output exceeded --max-pending.")              \
  X(protocol_errors_total, kCounter, by<ErrorCode>("code"), "flux_protocol_errors_total",         \
    "FLUX_ERROR messages sent, by code.")

// ReactorMetrics::pool (the read and replay pools and the frame-node pool of
// one reactor report here), /stats "pool".
#define FLUX_POOL_METRICS(X)                                                                       \
  X(block_acquires_total, kCounter, kUnlabelled, "flux_buffer_acquires_total",                     \
    "Buffer blocks taken from the pool.")                                                          \
  X(block_allocations_total, kCounter, label("pool", "block"), "flux_buffer_allocations_total",   \
    "Heap allocations made by the buffer pools (growth). Zero in steady state.")                  \
  X(frame_node_allocations_total, kCounter, label("pool", "frame_node"),                           \
    "flux_buffer_allocations_total", "")                                                           \
  X(block_releases_total, kCounter, label("pool", "block"), "flux_buffer_releases_total",         \
    "Memory given back by the buffer pools' decay: blocks, or frame-node chunks, freed.")         \
  X(frame_node_releases_total, kCounter, label("pool", "frame_node"),                              \
    "flux_buffer_releases_total", "")                                                              \
  X(block_bytes_in_use, kGauge, kUnlabelled, "flux_buffer_pool_in_use_bytes",                      \
    "Bytes of pooled blocks lent out.")                                                            \
  X(block_bytes_free, kGauge, kUnlabelled, "flux_buffer_pool_free_bytes",                          \
    "Bytes of pooled blocks free for reuse.")

// ReactorMetrics::loop, /stats "loop". One iteration runs from the instant
// epoll_wait returns to the instant the next epoll_wait begins ("busy", as
// Envoy's loop_duration_us and Redis's eventloop_duration_sum define it);
// the time blocked in epoll_wait is "poll wait". busy + poll = wall time.
#define FLUX_LOOP_METRICS(X)                                                                       \
  X(iterations_total, kCounter, kUnlabelled, "flux_loop_iterations_total",                         \
    "Event loop iterations.")                                                                      \
  X(busy_ns_total, kNanoseconds, kUnlabelled, "flux_loop_busy_seconds_total",                      \
    "Time from epoll_wait returning to the next epoll_wait.")                                      \
  X(poll_ns_total, kNanoseconds, kUnlabelled, "flux_loop_poll_wait_seconds_total",                 \
    "Time blocked in epoll_wait.")                                                                 \
  X(last_turn_monotonic_ns, kStamp, kUnlabelled, "",                                               \
    "When the 100 ms tick last ran; /healthz and /stats loop.last_turn_age_seconds read it.")     \
  X(voluntary_switches_total, kCounter, label("kind", "voluntary"),                                \
    "flux_context_switches_total", "Context switches of the reactor thread (getrusage).")         \
  X(involuntary_switches_total, kCounter, label("kind", "involuntary"),                            \
    "flux_context_switches_total", "")

// ReactorMetrics::sessions, /stats "sessions".
#define FLUX_SESSION_METRICS(X)                                                                    \
  X(attached, kGauge, label("state", "attached"), "flux_sessions",                                 \
    "Sessions by attachment: attached to a connection, or detached awaiting resume.")             \
  X(detached, kGauge, label("state", "detached"), "flux_sessions", "")                             \
  X(replay_memory_bytes, kGauge, kUnlabelled, "flux_replay_memory_bytes",                          \
    "Memory held by replay buffers (whole pooled blocks).")                                        \
  X(replay_frame_bytes, kGauge, kUnlabelled, "flux_replay_frame_bytes",                            \
    "Header and payload bytes of the frames kept for replay.")                                     \
  X(created_total, kCounter, kUnlabelled, "flux_sessions_created_total",                           \
    "Sessions created by FLUX_HELLO.")                                                             \
  X(frames_replayed_total, kCounter, kUnlabelled, "flux_replayed_frames_total",                    \
    "Data frames re-sent on resume.")                                                              \
  X(expired_total, kCounter, kUnlabelled, "flux_sessions_expired_total",                           \
    "Detached sessions expired after --resume-window.")                                            \
  X(evicted_total, kCounter, kUnlabelled, "flux_sessions_evicted_total",                           \
    "Detached sessions evicted to keep replay memory under --replay-memory.")                      \
  X(resumes_total, kCounter, by<ResumeResult>("result"), "flux_resumes_total",                     \
    "FLUX_RESUME requests, by result.")

// ReactorMetrics' own members (the histograms), /stats "latency_seconds".
#define FLUX_LATENCY_METRICS(X)                                                                    \
  X(poll_wait, kHistogram, kUnlabelled, "flux_loop_poll_wait_seconds",                             \
    "Time blocked in epoll_wait, per iteration.")                                                  \
  X(loop_busy, kHistogram, kUnlabelled, "flux_loop_busy_seconds",                                  \
    "Busy time per loop iteration (poll return to next poll).")                                    \
  X(loop_lag, kHistogram, kUnlabelled, "flux_loop_lag_seconds",                                    \
    "How late the reactor's 100 ms timer fires.")                                                  \
  X(echo_latency, kHistogram, kUnlabelled, "flux_echo_latency_seconds",                            \
    "From a data frame fully read to its echo handed to the kernel.")                              \
  X(store_round_trip, kHistogram, kUnlabelled, "flux_session_store_round_trip_seconds",            \
    "Session store (--session-store redis://): from a command issued to its answer.")

// ReactorMetrics::session_store, /stats "session_store": --session-store redis://
// (gateway/session_store.h). All zero with the memory store.
#define FLUX_STORE_METRICS(X)                                                                      \
  X(connected, kGauge, kUnlabelled, "flux_session_store_connected",                                \
    "1 while the reactor's connection to the session store is up and ready.")                     \
  X(commands_total, kCounter, kUnlabelled, "flux_session_store_commands_total",                    \
    "Commands sent to the session store.")                                                         \
  X(errors_total, kCounter, by<StoreError>("kind"), "flux_session_store_errors_total",            \
    "Session store failures, by kind.")                                                            \
  X(pending_frames, kGauge, kUnlabelled, "flux_session_store_pending_frames",                      \
    "Data frames waiting for the session store to acknowledge them (their echoes wait too).")     \
  X(fallbacks_total, kCounter, kUnlabelled, "flux_session_store_fallbacks_total",                  \
    "Sessions that fell back to node-local because the store could not persist in time.")        \
  X(takeovers_total, kCounter, kUnlabelled, "flux_session_store_takeovers_total",                  \
    "Sessions resumed here that another node held last (its connection, or its crash).")

// The groups of ReactorMetrics: G(member, LiveType, SnapshotType, ROWS).
// Each group is its own cache line in the reactor (ReactorMetrics).
#define FLUX_METRIC_GROUPS(G)                                                                      \
  G(connections, ConnectionMetrics, ConnectionSnapshot, FLUX_CONNECTION_METRICS)                  \
  G(traffic, TrafficMetrics, TrafficSnapshot, FLUX_TRAFFIC_METRICS)                                \
  G(pool, PoolMetrics, PoolSnapshot, FLUX_POOL_METRICS)                                            \
  G(loop, LoopMetrics, LoopSnapshot, FLUX_LOOP_METRICS)                                            \
  G(sessions, SessionMetrics, SessionSnapshot, FLUX_SESSION_METRICS)                              \
  G(session_store, StoreMetrics, StoreSnapshot, FLUX_STORE_METRICS)

// The process, read from /proc/self (metrics/process_stats.h: ProcessStats'
// fields are these rows), /stats "process". P(field, C++ type, kind,
// "prometheus_name", "help"): the standard names of Prometheus's process
// collector, without reactor label.
#define FLUX_PROCESS_METRICS(P)                                                                    \
  P(cpu_seconds_total, double, kCounter, "process_cpu_seconds_total",                              \
    "Total user and system CPU time spent in seconds.")                                            \
  P(resident_memory_bytes, uint64_t, kGauge, "process_resident_memory_bytes",                      \
    "Resident memory size in bytes.")                                                              \
  P(virtual_memory_bytes, uint64_t, kGauge, "process_virtual_memory_bytes",                        \
    "Virtual memory size in bytes.")                                                               \
  P(open_fds, uint64_t, kGauge, "process_open_fds", "Number of open file descriptors.")            \
  P(max_fds, uint64_t, kGauge, "process_max_fds", "Maximum number of open file descriptors.")     \
  P(threads, uint64_t, kGauge, "process_threads", "Number of OS threads in the process.")          \
  P(start_time_unix_seconds, double, kGauge, "process_start_time_seconds",                         \
    "Start time of the process since unix epoch in seconds.")

// /stats "rates" (derived: per second over the last 1 s and 10 s, by the
// metrics thread): RATE(key, group, field), the rate of a counter row of the
// groups above (all label values of an enum-labelled row, summed); the rows
// named with the same key are summed (the block and frame-node pools make one
// "buffer_allocations"). loop_utilization, a ratio, is derived in
// metrics/stats_json.cc.
#define FLUX_RATE_METRICS(RATE)                                                                    \
  RATE(frames_in, traffic, frames_in_total)                                                        \
  RATE(frames_out, traffic, frames_out_total)                                                      \
  RATE(bytes_in, traffic, bytes_in_total)                                                          \
  RATE(bytes_out, traffic, bytes_out_total)                                                        \
  RATE(accepted, connections, accepted_total)                                                      \
  RATE(closed, connections, closed_total)                                                          \
  RATE(buffer_allocations, pool, block_allocations_total)                                          \
  RATE(buffer_allocations, pool, frame_node_allocations_total)                                     \
  RATE(buffer_releases, pool, block_releases_total)                                                \
  RATE(buffer_releases, pool, frame_node_releases_total)                                           \
  RATE(context_switches_voluntary, loop, voluntary_switches_total)                                 \
  RATE(context_switches_involuntary, loop, involuntary_switches_total)                             \
  RATE(loop_iterations, loop, iterations_total)

// NOLINTEND(cppcoreguidelines-macro-usage)
// clang-format on

namespace flux {

// flux_build_info{version,node} 1: the build, and --node-id (/stats "version"
// and "node").
inline constexpr std::string_view kBuildInfoName = "flux_build_info";
inline constexpr std::string_view kBuildInfoHelp = "Build information; the value is always 1.";

}  // namespace flux
