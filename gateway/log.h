#pragma once
// Log lines go to stderr, one per event worth an operator's attention:
// start, bind, shutdown, resource exhaustion (once per episode). Never a
// payload byte, never per frame.

#include <cstdarg>

namespace flux {

// printf-style; prefixes a UTC timestamp and "flux:". Any thread.
void log_info(const char* format, ...) __attribute__((format(printf, 1, 2)));

}  // namespace flux
