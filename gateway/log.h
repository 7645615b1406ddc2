#pragma once
// Log lines go to stderr, one per event worth an operator's attention:
// start, bind, shutdown, resource exhaustion (once per episode), slow
// consumers. Never a payload byte, never per frame.
//
// Each line is an event: a name, a level, a few typed fields and a
// sentence for people. --log-format chooses how it is written:
//
//   text  2026-12-04T14:42:25.490Z flux: slow consumer: connection 1 on ...
//   json  {"time":"2026-12-04T14:42:25.490Z","level":"warn","event":"slow-consumer",
//          "message":"slow consumer: connection 1 on ...","connection":1,...}
//
// (one JSON object per line, for log shippers).
//
// Thread contract: any thread; set_log_format() before the threads start.

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <variant>

namespace flux {

enum class LogLevel : uint8_t { kInfo, kWarn, kError };
enum class LogFormat : uint8_t { kText, kJson };

void set_log_format(LogFormat format) noexcept;

struct LogField {
  const char* key;
  std::variant<int64_t, uint64_t, double, std::string_view> value;
};

// `event` is a stable kebab-case name; `format` makes the human sentence.
void log_event(LogLevel level, const char* event, std::initializer_list<LogField> fields,
               const char* format, ...) __attribute__((format(printf, 4, 5)));

}  // namespace flux
