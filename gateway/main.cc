// flux-gateway: parses the flags, binds the client and metrics ports,
// prints them, runs the reactor until SIGTERM/SIGINT has drained every
// connection, then stops the metrics thread and exits 0.

#include <csignal>
#include <cstdio>
#include <string>
#include <variant>

#include "gateway/log.h"
#include "gateway/options.h"
#include "gateway/reactor.h"
#include "metrics/metrics_server.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitCannotStart = 1;

flux::ReactorHandle handle_of(flux::Reactor& reactor) {
  return {reactor.label(), &reactor.metrics(),
          [&reactor](std::function<void(std::vector<flux::ConnectionInfo>)> done) {
            reactor.post([&reactor, done = std::move(done)] { done(reactor.list_connections()); });
          }};
}

flux::MetricsServerConfig metrics_config(const flux::Options& options) {
  flux::MetricsServerConfig config;
  config.bind = options.bind;
  config.port = options.metrics_port;
  config.version = FLUX_VERSION;
  config.block_size_bytes = flux::BufferPool::block_size_for(options.max_frame);
  return config;
}

int serve(const flux::Options& options) {
  // A peer that vanished must surface as EPIPE on our write, not kill us.
  std::signal(SIGPIPE, SIG_IGN);
  flux::Reactor reactor(options);
  std::string error;
  if (!reactor.listen(error)) {
    flux::log_info("%s", error.c_str());
    return kExitCannotStart;
  }
  flux::MetricsServer metrics(metrics_config(options), {handle_of(reactor)});
  if (!metrics.start(error)) {
    flux::log_info("%s", error.c_str());
    return kExitCannotStart;
  }
  reactor.handle_signals();
  printf("listening port=%u metrics_port=%u\n", reactor.port(), metrics.port());
  fflush(stdout);
  flux::log_info("listening on %s:%u, metrics on http://%s:%u/; version %s, read budget %u",
                 options.bind.c_str(), reactor.port(), options.bind.c_str(), metrics.port(),
                 FLUX_VERSION, options.read_budget);
  reactor.run();
  metrics.stop();
  flux::log_info("shutdown complete");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  flux::ParseOutcome outcome = flux::parse_options(argc, argv);
  if (std::holds_alternative<flux::ShowHelp>(outcome)) {
    fputs(flux::help_text().c_str(), stdout);
    return 0;
  }
  if (const auto* error = std::get_if<flux::OptionError>(&outcome)) {
    fprintf(stderr, "flux-gateway: %s\n", error->message.c_str());
    return kExitUsage;
  }
  return serve(std::get<flux::Options>(outcome));
}
