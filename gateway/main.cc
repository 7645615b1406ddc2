// flux-gateway: parses the flags, binds the client and metrics ports,
// prints them, runs the reactors until SIGTERM/SIGINT has drained every
// connection, then stops the metrics thread and exits 0.

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "gateway/buffer_pool.h"
#include "gateway/log.h"
#include "gateway/options.h"
#include "gateway/reactor.h"
#include "gateway/reactor_group.h"
#include "gateway/service_notifier.h"
#include "metrics/metrics_server.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitCannotStart = 1;

flux::MetricsServerConfig metrics_config(const flux::Options& options) {
  flux::MetricsServerConfig config;
  config.bind = options.bind;
  config.port = options.metrics_port;
  config.version = FLUX_VERSION;
  config.node_id = options.node_id;
  config.session_store = options.session_store.redis;
  config.block_size_bytes = flux::BufferPool::block_size_for(options.max_frame);
  return config;
}

// What the metrics thread may reach of each reactor: its metrics block
// (atomics, read directly) and its connection listing (built on the
// reactor's own thread, by message).
std::vector<flux::ReactorHandle> metrics_handles(const flux::ReactorGroup& group) {
  std::vector<flux::ReactorHandle> out;
  for (size_t i = 0; i < group.size(); ++i) {
    flux::Reactor* reactor = &group.reactor(i);
    out.push_back({reactor->label(), &reactor->metrics(),
                   [reactor](std::function<void(std::vector<flux::ConnectionInfo>)> done) {
                     reactor->post(
                         [reactor, done = std::move(done)] { done(reactor->list_connections()); });
                   }});
  }
  return out;
}

// SIGTERM and SIGINT are blocked in every thread (the mask is inherited)
// and taken synchronously by main with sigwait: no handler runs inside a
// reactor, and each reactor is told by message.
sigset_t shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

// hiredis resolves the host of every connection attempt with a blocking
// getaddrinfo; a reactor must never block, so a name is resolved once, here,
// before the reactors start, and they connect to the address.
bool resolve_session_store(flux::Options& options, std::string& error) {
  if (!options.session_store.redis) return true;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(options.session_store.host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || !found) {
    error =
        "--session-store: cannot resolve '" + options.session_store.host + "': " + gai_strerror(rc);
    return false;
  }
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr, text, sizeof text);
  freeaddrinfo(found);
  options.session_store.host = text;
  return true;
}

int serve(flux::Options options) {
  flux::set_log_format(options.log_format);
  // A peer that vanished must surface as EPIPE on our write, not kill us.
  std::signal(SIGPIPE, SIG_IGN);
  const sigset_t signals = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::string error;
  if (!resolve_session_store(options, error)) {
    flux::log_event(flux::LogLevel::kError, "bad-session-store",
                    {{"error", std::string_view(error)}}, "%s", error.c_str());
    return kExitCannotStart;
  }
  flux::ReactorGroup reactors(options);
  if (!reactors.listen(error)) {
    flux::log_event(flux::LogLevel::kError, "bind-failed", {{"error", std::string_view(error)}},
                    "%s", error.c_str());
    return kExitCannotStart;
  }
  flux::MetricsServer metrics(metrics_config(options), metrics_handles(reactors));
  if (!metrics.start(error)) {
    flux::log_event(flux::LogLevel::kError, "bind-failed", {{"error", std::string_view(error)}},
                    "%s", error.c_str());
    return kExitCannotStart;
  }
  reactors.start();
  printf("listening port=%u metrics_port=%u\n", reactors.port(), metrics.port());
  fflush(stdout);
  flux::log_event(flux::LogLevel::kInfo, "listening",
                  {{"bind", std::string_view(options.bind)},
                   {"port", uint64_t{reactors.port()}},
                   {"metrics_port", uint64_t{metrics.port()}},
                   {"reactors", uint64_t{reactors.size()}},
                   {"version", std::string_view(FLUX_VERSION)}},
                  "listening on %s:%u with %zu reactor(s), metrics on http://%s:%u/; version %s",
                  options.bind.c_str(), reactors.port(), reactors.size(), options.bind.c_str(),
                  metrics.port(), FLUX_VERSION);
  // systemd (Type=notify): ready now; the watchdog pings while every loop
  // turns within /healthz's bound.
  std::vector<const flux::ReactorMetrics*> loops;
  for (size_t i = 0; i < reactors.size(); ++i) loops.push_back(&reactors.reactor(i).metrics());
  flux::ServiceNotifier service([loops, bound = metrics_config(options).stuck_after] {
    return flux::loops_turned_within(loops, bound);
  });
  service.ready("listening on port " + std::to_string(reactors.port()));
  int received = 0;
  sigwait(&signals, &received);
  const char* signal_name = received == SIGINT ? "SIGINT" : "SIGTERM";
  flux::log_event(flux::LogLevel::kInfo, "shutdown-requested",
                  {{"signal", std::string_view(signal_name)}}, "%s: shutting down", signal_name);
  // Draining (docs/protocol.md, "Clusters"): /healthz says 503 at once, so
  // a balancer stops sending new connections before the listeners close.
  metrics.begin_draining();
  service.stopping(std::string(signal_name) + ": draining connections");
  reactors.request_shutdown();
  reactors.join();
  metrics.stop();
  flux::log_event(flux::LogLevel::kInfo, "shutdown-complete", {}, "shutdown complete");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  flux::ParseOutcome outcome = flux::parse_options(argc, argv);
  if (std::holds_alternative<flux::ShowHelp>(outcome)) {
    fputs(flux::help_text().c_str(), stdout);
    return 0;
  }
  if (std::holds_alternative<flux::ShowVersion>(outcome)) {
    fputs(flux::version_text().c_str(), stdout);
    return 0;
  }
  if (const auto* error = std::get_if<flux::OptionError>(&outcome)) {
    fprintf(stderr, "flux-gateway: %s\n", error->message.c_str());
    return kExitUsage;
  }
  return serve(std::get<flux::Options>(outcome));
}
