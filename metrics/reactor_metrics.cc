#include "metrics/reactor_metrics.h"

#include <algorithm>

namespace flux {
namespace {

template <size_t N>
std::array<uint64_t, N> load_all(const std::array<SingleWriterU64, N>& cells) noexcept {
  std::array<uint64_t, N> out{};
  for (size_t i = 0; i < N; ++i) out[i] = cells[i].get();
  return out;
}

template <size_t N>
void add_all(std::array<uint64_t, N>& into, const std::array<uint64_t, N>& from) noexcept {
  for (size_t i = 0; i < N; ++i) into[i] += from[i];
}

}  // namespace

uint64_t ReactorSnapshot::open_connections() const noexcept {
  uint64_t open = 0;
  for (uint64_t n : by_state) open += n;
  return open;
}

uint64_t ReactorSnapshot::closed_connections() const noexcept {
  uint64_t closed = 0;
  for (uint64_t n : closed_total) closed += n;
  return closed;
}

ReactorSnapshot snapshot(const ReactorMetrics& m) noexcept {
  ReactorSnapshot s;
  s.accepted_total = m.connections.accepted_total.get();
  s.accept_errors_total = m.connections.accept_errors_total.get();
  s.accept_pauses_total = m.connections.accept_pauses_total.get();
  s.by_state = load_all(m.connections.by_state);
  s.closed_total = load_all(m.connections.closed_total);
  s.proxy_header_errors_total = load_all(m.connections.proxy_header_errors_total);
  s.frames_in_total = m.traffic.frames_in_total.get();
  s.frames_out_total = m.traffic.frames_out_total.get();
  s.bytes_in_total = m.traffic.bytes_in_total.get();
  s.bytes_out_total = m.traffic.bytes_out_total.get();
  s.bytes_queued = m.traffic.bytes_queued.get();
  s.backpressure_pauses_total = m.traffic.backpressure_pauses_total.get();
  s.errors_sent_total = load_all(m.traffic.protocol_errors_total);
  s.block_acquires_total = m.pool.block_acquires_total.get();
  s.block_allocations_total = m.pool.block_allocations_total.get();
  s.frame_node_allocations_total = m.pool.frame_node_allocations_total.get();
  s.block_releases_total = m.pool.block_releases_total.get();
  s.frame_node_releases_total = m.pool.frame_node_releases_total.get();
  s.block_bytes_in_use = m.pool.block_bytes_in_use.get();
  s.block_bytes_free = m.pool.block_bytes_free.get();
  s.iterations_total = m.loop.iterations_total.get();
  s.busy_ns_total = m.loop.busy_ns_total.get();
  s.poll_ns_total = m.loop.poll_ns_total.get();
  s.last_turn_monotonic_ns = m.loop.last_turn_monotonic_ns.get();
  s.voluntary_switches_total = m.loop.voluntary_switches_total.get();
  s.involuntary_switches_total = m.loop.involuntary_switches_total.get();
  s.sessions_attached = m.sessions.attached.get();
  s.sessions_detached = m.sessions.detached.get();
  s.replay_memory_bytes = m.sessions.replay_memory_bytes.get();
  s.replay_frame_bytes = m.sessions.replay_frame_bytes.get();
  s.sessions_created_total = m.sessions.created_total.get();
  s.frames_replayed_total = m.sessions.frames_replayed_total.get();
  s.sessions_expired_total = m.sessions.expired_total.get();
  s.sessions_evicted_total = m.sessions.evicted_total.get();
  s.resumes_total = load_all(m.sessions.resumes_total);
  s.poll_wait = m.poll_wait.snapshot();
  s.loop_busy = m.loop_busy.snapshot();
  s.loop_lag = m.loop_lag.snapshot();
  s.echo_latency = m.echo_latency.snapshot();
  return s;
}

void ReactorSnapshot::merge(const ReactorSnapshot& o) noexcept {
  accepted_total += o.accepted_total;
  accept_errors_total += o.accept_errors_total;
  accept_pauses_total += o.accept_pauses_total;
  add_all(by_state, o.by_state);
  add_all(closed_total, o.closed_total);
  add_all(proxy_header_errors_total, o.proxy_header_errors_total);
  frames_in_total += o.frames_in_total;
  frames_out_total += o.frames_out_total;
  bytes_in_total += o.bytes_in_total;
  bytes_out_total += o.bytes_out_total;
  bytes_queued += o.bytes_queued;
  backpressure_pauses_total += o.backpressure_pauses_total;
  add_all(errors_sent_total, o.errors_sent_total);
  block_acquires_total += o.block_acquires_total;
  block_allocations_total += o.block_allocations_total;
  frame_node_allocations_total += o.frame_node_allocations_total;
  block_releases_total += o.block_releases_total;
  frame_node_releases_total += o.frame_node_releases_total;
  block_bytes_in_use += o.block_bytes_in_use;
  block_bytes_free += o.block_bytes_free;
  iterations_total += o.iterations_total;
  busy_ns_total += o.busy_ns_total;
  poll_ns_total += o.poll_ns_total;
  last_turn_monotonic_ns = std::min(last_turn_monotonic_ns, o.last_turn_monotonic_ns);
  voluntary_switches_total += o.voluntary_switches_total;
  involuntary_switches_total += o.involuntary_switches_total;
  sessions_attached += o.sessions_attached;
  sessions_detached += o.sessions_detached;
  replay_memory_bytes += o.replay_memory_bytes;
  replay_frame_bytes += o.replay_frame_bytes;
  sessions_created_total += o.sessions_created_total;
  frames_replayed_total += o.frames_replayed_total;
  sessions_expired_total += o.sessions_expired_total;
  sessions_evicted_total += o.sessions_evicted_total;
  add_all(resumes_total, o.resumes_total);
  poll_wait.merge(o.poll_wait);
  loop_busy.merge(o.loop_busy);
  loop_lag.merge(o.loop_lag);
  echo_latency.merge(o.echo_latency);
}

}  // namespace flux
