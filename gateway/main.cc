// flux-gateway: parses the flags, binds, prints the ports, runs the reactor
// until SIGTERM/SIGINT has drained every connection, then exits 0.

#include <csignal>
#include <cstdio>
#include <string>
#include <variant>

#include "gateway/log.h"
#include "gateway/options.h"
#include "gateway/reactor.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitCannotStart = 1;

int serve(const flux::Options& options) {
  // A peer that vanished must surface as EPIPE on our write, not kill us.
  std::signal(SIGPIPE, SIG_IGN);
  flux::Reactor reactor(options);
  std::string error;
  if (!reactor.listen(error)) {
    flux::log_info("%s", error.c_str());
    return kExitCannotStart;
  }
  reactor.handle_signals();
  // The metrics port is served by the metrics thread (not in this version): 0.
  printf("listening port=%u metrics_port=%u\n", reactor.port(), 0u);
  fflush(stdout);
  flux::log_info("listening on %s:%u; version %s, read budget %u, max %llu connections",
                 options.bind.c_str(), reactor.port(), FLUX_VERSION, options.read_budget,
                 static_cast<unsigned long long>(options.max_connections));
  reactor.run();
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
