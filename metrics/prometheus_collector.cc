#include "metrics/prometheus_collector.h"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "gateway/protocol.h"

namespace flux {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

double seconds(uint64_t ns) {
  return double(ns) / 1e9;
}

// Collects families in order, one builder call per series.
class Families {
 public:
  explicit Families(const ScrapeInput& in) : in_(in) {}

  // One series per reactor: value(snapshot) with the reactor label.
  template <typename Value>
  void per_reactor(const char* name, const char* help, MetricType type, Value value) {
    MetricFamily& family = add(name, help, type);
    for (size_t i = 0; i < in_.reactors.size(); ++i)
      family.metric.push_back(metric(type, reactor_labels(i), double(value(in_.reactors[i]))));
  }

  // One series per reactor and per value of an extra label.
  template <size_t N, typename Name, typename Value>
  void per_reactor_and(const char* name, const char* help, MetricType type, const char* label,
                       Name label_value, Value value) {
    MetricFamily& family = add(name, help, type);
    for (size_t i = 0; i < in_.reactors.size(); ++i)
      for (size_t k = 0; k < N; ++k) {
        Labels labels = reactor_labels(i);
        labels.push_back({label, std::string(label_value(k))});
        family.metric.push_back(metric(type, labels, double(value(in_.reactors[i], k))));
      }
  }

  template <typename Pick>
  void histogram(const char* name, const char* help, Pick pick) {
    MetricFamily& family = add(name, help, MetricType::Histogram);
    for (size_t i = 0; i < in_.reactors.size(); ++i) {
      const HistogramSnapshot& h = pick(in_.reactors[i]);
      ClientMetric m;
      m.label = reactor_labels(i);
      uint64_t cumulative = 0;
      for (size_t b = 0; b < kPrometheusBoundsNs.size(); ++b) {
        cumulative += h.prometheus[b];
        m.histogram.bucket.push_back({cumulative, seconds(kPrometheusBoundsNs[b])});
      }
      // _count is the +Inf bucket, summed from the same copy so they agree.
      m.histogram.sample_count = cumulative + h.prometheus.back();
      m.histogram.sample_sum = seconds(h.sum_ns);
      family.metric.push_back(std::move(m));
    }
  }

  void single(const char* name, const char* help, MetricType type, double value,
              Labels labels = {}) {
    add(name, help, type).metric.push_back(metric(type, std::move(labels), value));
  }

  std::vector<MetricFamily> take() { return std::move(families_); }

 private:
  MetricFamily& add(const char* name, const char* help, MetricType type) {
    families_.push_back({name, help, type, {}});
    return families_.back();
  }
  Labels reactor_labels(size_t i) const {
    return {{"reactor", i < in_.labels.size() ? in_.labels[i] : std::to_string(i)}};
  }
  static ClientMetric metric(MetricType type, Labels labels, double value) {
    ClientMetric m;
    m.label = std::move(labels);
    if (type == MetricType::Counter)
      m.counter.value = value;
    else
      m.gauge.value = value;
    return m;
  }

  const ScrapeInput& in_;
  std::vector<MetricFamily> families_;
};

void connection_families(Families& f) {
  constexpr MetricType kGauge = MetricType::Gauge, kCounter = MetricType::Counter;
  // CLOSED connections are gone: the gauge lists the four live states.
  f.per_reactor_and<kConnStateCount - 1>(
      "flux_connections", "Open connections by protocol state.", kGauge, "state",
      [](size_t k) { return to_string(static_cast<ConnState>(k)); },
      [](const ReactorSnapshot& s, size_t k) { return s.by_state[k]; });
  f.per_reactor("flux_connections_accepted_total", "Connections accepted.", kCounter,
                [](const ReactorSnapshot& s) { return s.accepted_total; });
  f.per_reactor_and<kCloseReasonCount>(
      "flux_connections_closed_total", "Connections closed, by reason.", kCounter, "reason",
      [](size_t k) { return to_string(static_cast<CloseReason>(k)); },
      [](const ReactorSnapshot& s, size_t k) { return s.closed_total[k]; });
  f.per_reactor_and<kProxyHeaderErrorCount>(
      "flux_proxy_header_errors_total",
      "Connections closed without reply for their PROXY protocol header (--proxy-protocol), by "
      "reason.",
      kCounter, "reason", [](size_t k) { return to_string(static_cast<ProxyHeaderError>(k)); },
      [](const ReactorSnapshot& s, size_t k) { return s.proxy_header_errors_total[k]; });
  f.per_reactor(
      "flux_accept_errors_total",
      "accept4 failures for lack of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).",
      kCounter, [](const ReactorSnapshot& s) { return s.accept_errors_total; });
  f.per_reactor("flux_accept_pauses_total", "Times accepting paused on descriptor exhaustion.",
                kCounter, [](const ReactorSnapshot& s) { return s.accept_pauses_total; });
}

void traffic_families(Families& f) {
  constexpr MetricType kGauge = MetricType::Gauge, kCounter = MetricType::Counter;
  f.per_reactor("flux_frames_received_total", "Whole frames received from clients.", kCounter,
                [](const ReactorSnapshot& s) { return s.frames_in_total; });
  f.per_reactor("flux_frames_sent_total", "Whole frames handed to the kernel.", kCounter,
                [](const ReactorSnapshot& s) { return s.frames_out_total; });
  f.per_reactor("flux_received_bytes_total", "Bytes read from client sockets.", kCounter,
                [](const ReactorSnapshot& s) { return s.bytes_in_total; });
  f.per_reactor("flux_sent_bytes_total", "Bytes written to client sockets.", kCounter,
                [](const ReactorSnapshot& s) { return s.bytes_out_total; });
  f.per_reactor("flux_output_queued_bytes", "Output queued and not yet written, all connections.",
                kGauge, [](const ReactorSnapshot& s) { return s.bytes_queued; });
  f.per_reactor("flux_backpressure_pauses_total",
                "Times reading from a client paused because its output exceeded --max-pending.",
                kCounter, [](const ReactorSnapshot& s) { return s.backpressure_pauses_total; });
  f.per_reactor_and<kErrorCodeCount>(
      "flux_protocol_errors_total", "FLUX_ERROR messages sent, by code.", kCounter, "code",
      [](size_t k) { return to_string(static_cast<ErrorCode>(k)); },
      [](const ReactorSnapshot& s, size_t k) { return s.errors_sent_total[k]; });
}

void buffer_families(Families& f) {
  constexpr MetricType kGauge = MetricType::Gauge, kCounter = MetricType::Counter;
  f.per_reactor("flux_buffer_acquires_total", "Buffer blocks taken from the pool.", kCounter,
                [](const ReactorSnapshot& s) { return s.block_acquires_total; });
  f.per_reactor_and<2>(
      "flux_buffer_allocations_total",
      "Heap allocations made by the buffer pools (growth). Zero in steady state.", kCounter, "pool",
      [](size_t k) { return k == 0 ? "block" : "frame_node"; },
      [](const ReactorSnapshot& s, size_t k) {
        return k == 0 ? s.block_allocations_total : s.frame_node_allocations_total;
      });
  f.per_reactor_and<2>(
      "flux_buffer_releases_total",
      "Memory given back by the buffer pools' decay: blocks, or frame-node chunks, freed.",
      kCounter, "pool", [](size_t k) { return k == 0 ? "block" : "frame_node"; },
      [](const ReactorSnapshot& s, size_t k) {
        return k == 0 ? s.block_releases_total : s.frame_node_releases_total;
      });
  f.per_reactor("flux_buffer_pool_in_use_bytes", "Bytes of pooled blocks lent out.", kGauge,
                [](const ReactorSnapshot& s) { return s.block_bytes_in_use; });
  f.per_reactor("flux_buffer_pool_free_bytes", "Bytes of pooled blocks free for reuse.", kGauge,
                [](const ReactorSnapshot& s) { return s.block_bytes_free; });
}

void loop_families(Families& f) {
  constexpr MetricType kCounter = MetricType::Counter;
  f.per_reactor("flux_loop_iterations_total", "Event loop iterations.", kCounter,
                [](const ReactorSnapshot& s) { return s.iterations_total; });
  f.per_reactor("flux_loop_busy_seconds_total",
                "Time from epoll_wait returning to the next epoll_wait.", kCounter,
                [](const ReactorSnapshot& s) { return seconds(s.busy_ns_total); });
  f.per_reactor("flux_loop_poll_wait_seconds_total", "Time blocked in epoll_wait.", kCounter,
                [](const ReactorSnapshot& s) { return seconds(s.poll_ns_total); });
  f.per_reactor_and<2>(
      "flux_context_switches_total", "Context switches of the reactor thread (getrusage).",
      kCounter, "kind", [](size_t k) { return k == 0 ? "voluntary" : "involuntary"; },
      [](const ReactorSnapshot& s, size_t k) {
        return k == 0 ? s.voluntary_switches_total : s.involuntary_switches_total;
      });
  f.histogram("flux_loop_poll_wait_seconds", "Time blocked in epoll_wait, per iteration.",
              [](const ReactorSnapshot& s) -> const HistogramSnapshot& { return s.poll_wait; });
  f.histogram("flux_loop_busy_seconds", "Busy time per loop iteration (poll return to next poll).",
              [](const ReactorSnapshot& s) -> const HistogramSnapshot& { return s.loop_busy; });
  f.histogram("flux_loop_lag_seconds", "How late the reactor's 100 ms timer fires.",
              [](const ReactorSnapshot& s) -> const HistogramSnapshot& { return s.loop_lag; });
  f.histogram("flux_echo_latency_seconds",
              "From a data frame fully read to its echo handed to the kernel.",
              [](const ReactorSnapshot& s) -> const HistogramSnapshot& { return s.echo_latency; });
}

void session_families(Families& f) {
  constexpr MetricType kGauge = MetricType::Gauge, kCounter = MetricType::Counter;
  f.per_reactor_and<2>(
      "flux_sessions",
      "Sessions by attachment: attached to a connection, or detached awaiting resume.", kGauge,
      "state", [](size_t k) { return k == 0 ? "attached" : "detached"; },
      [](const ReactorSnapshot& s, size_t k) {
        return k == 0 ? s.sessions_attached : s.sessions_detached;
      });
  f.per_reactor("flux_sessions_created_total", "Sessions created by FLUX_HELLO.", kCounter,
                [](const ReactorSnapshot& s) { return s.sessions_created_total; });
  f.per_reactor_and<kResumeResultCount>(
      "flux_resumes_total", "FLUX_RESUME requests, by result.", kCounter, "result",
      [](size_t k) { return to_string(static_cast<ResumeResult>(k)); },
      [](const ReactorSnapshot& s, size_t k) { return s.resumes_total[k]; });
  f.per_reactor("flux_replayed_frames_total", "Data frames re-sent on resume.", kCounter,
                [](const ReactorSnapshot& s) { return s.frames_replayed_total; });
  f.per_reactor("flux_sessions_expired_total", "Detached sessions expired after --resume-window.",
                kCounter, [](const ReactorSnapshot& s) { return s.sessions_expired_total; });
  f.per_reactor("flux_sessions_evicted_total",
                "Detached sessions evicted to keep replay memory under --replay-memory.", kCounter,
                [](const ReactorSnapshot& s) { return s.sessions_evicted_total; });
  f.per_reactor("flux_replay_memory_bytes", "Memory held by replay buffers (whole pooled blocks).",
                kGauge, [](const ReactorSnapshot& s) { return s.replay_memory_bytes; });
  f.per_reactor("flux_replay_frame_bytes",
                "Header and payload bytes of the frames kept for replay.", kGauge,
                [](const ReactorSnapshot& s) { return s.replay_frame_bytes; });
}

void process_families(Families& f, const ScrapeInput& in) {
  const ProcessStats& p = in.process;
  f.single("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
           MetricType::Counter, p.cpu_seconds_total);
  f.single("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
           double(p.resident_memory_bytes));
  f.single("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
           double(p.virtual_memory_bytes));
  f.single("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
           double(p.open_fds));
  f.single("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
           double(p.max_fds));
  f.single("process_threads", "Number of OS threads in the process.", MetricType::Gauge,
           double(p.threads));
  f.single("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
           MetricType::Gauge, p.start_time_unix_seconds);
  f.single("flux_build_info", "Build information; the value is always 1.", MetricType::Gauge, 1.0,
           {{"version", in.version}, {"node", std::to_string(in.node_id)}});
}

}  // namespace

std::vector<MetricFamily> build_metric_families(const ScrapeInput& input) {
  Families families(input);
  connection_families(families);
  traffic_families(families);
  buffer_families(families);
  loop_families(families);
  session_families(families);
  process_families(families, input);
  return families.take();
}

std::string serialize_metrics(const std::vector<MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace flux
