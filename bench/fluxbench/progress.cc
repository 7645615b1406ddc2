#include "bench/fluxbench/progress.h"

#include <unistd.h>

#include <cmath>
#include <string>

namespace flux::bench {
namespace {

std::string si(double v) {
  char buf[32];
  if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

std::string us(double ns) {
  char buf[32];
  if (ns >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fms", ns / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fus", ns / 1e3);
  }
  return buf;
}

std::string server_part(const ServerSample* s) {
  if (s == nullptr) return "";
  char buf[96];
  if (std::isnan(s->cpu_percent_1s)) return "  | server: no /stats figures";
  std::snprintf(buf, sizeof buf, "  | server cpu %.0f%% lag p99 %s", s->cpu_percent_1s,
                std::isnan(s->loop_lag_p99_s) ? "n/a" : us(s->loop_lag_p99_s * 1e9).c_str());
  return buf;
}

}  // namespace

ProgressLine::ProgressLine(bool enabled) : enabled_(enabled), tty_(::isatty(STDERR_FILENO) == 1) {}

void ProgressLine::show(const ProgressState& st) {
  if (!enabled_) return;
  std::string failed = st.failed > 0 ? " (" + std::to_string(st.failed) + " failed)" : "";
  std::fprintf(
      stderr, "%s[%5.1fs/%.1fs] %-8s conns %llu/%llu%s  rate %s/s  p99 %s  errors %llu%s%s",
      tty_ ? "\r\033[K" : "", st.elapsed_s, st.planned_s, st.phase,
      static_cast<unsigned long long>(st.ready), static_cast<unsigned long long>(st.conns),
      failed.c_str(), si(st.rate).c_str(), us(static_cast<double>(st.p99_ns)).c_str(),
      static_cast<unsigned long long>(st.errors), server_part(st.server).c_str(), tty_ ? "" : "\n");
  std::fflush(stderr);
  dirty_ = tty_;
}

void ProgressLine::finish() {
  if (dirty_) std::fputc('\n', stderr);
  dirty_ = false;
}

}  // namespace flux::bench
