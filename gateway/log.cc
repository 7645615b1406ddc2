#include "gateway/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

namespace flux {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// "2026-12-04T14:42:25.490Z"
std::string utc_stamp() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  char stamp[40];
  const size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", now.tv_nsec / 1000000);
  return stamp;
}

std::string json_line(LogLevel level, const char* event, std::initializer_list<LogField> fields,
                      const std::string& stamp, const char* message) {
  nlohmann::ordered_json line;
  line["time"] = stamp;
  line["level"] = level_name(level);
  line["event"] = event;
  line["message"] = message;
  for (const LogField& field : fields)
    std::visit([&](const auto& v) { line[field.key] = v; }, field.value);
  // Replace, not throw, on bytes that are not UTF-8: a log line must never fail.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void set_log_format(LogFormat format) noexcept {
  g_format.store(format);
}

void log_event(LogLevel level, const char* event, std::initializer_list<LogField> fields,
               const char* format, ...) {
  char message[512];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  const std::string stamp = utc_stamp();
  // One fprintf per line so lines from two threads never interleave.
  if (g_format.load() == LogFormat::kJson)
    fprintf(stderr, "%s\n", json_line(level, event, fields, stamp, message).c_str());
  else
    fprintf(stderr, "%s flux: %s\n", stamp.c_str(), message);
}

}  // namespace flux
