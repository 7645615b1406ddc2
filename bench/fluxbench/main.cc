// fluxbench: a load generator for the Flux protocol (docs/protocol.md).
// Parses the flags, runs the benchmark (runner.h), prints the summary or
// the JSON object, and exits non-zero if any echo was wrong or missing.

#include <cstdio>
#include <variant>

#include "bench/fluxbench/options.h"
#include "bench/fluxbench/report.h"
#include "bench/fluxbench/runner.h"

namespace {

constexpr int kExitUsage = 2;

}  // namespace

int main(int argc, char** argv) {
  flux::bench::ParseOutcome outcome = flux::bench::parse_options(argc, argv);
  if (std::holds_alternative<flux::bench::ShowHelp>(outcome)) {
    std::fputs(flux::bench::help_text().c_str(), stdout);
    return 0;
  }
  if (const auto* error = std::get_if<flux::bench::OptionError>(&outcome)) {
    std::fprintf(stderr, "fluxbench: %s (try --help)\n", error->message.c_str());
    return kExitUsage;
  }
  const auto& options = std::get<flux::bench::Options>(outcome);
  flux::bench::Runner runner(options);
  const flux::bench::RunResult result = runner.run();
  if (options.json) {
    flux::bench::print_json(result, stdout);
  } else {
    flux::bench::print_summary(result, stdout);
  }
  return flux::bench::exit_code(result);
}
