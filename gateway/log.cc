#include "gateway/log.h"

#include <cstdio>
#include <ctime>

namespace flux {

void log_info(const char* format, ...) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);

  char line[512];
  va_list args;
  va_start(args, format);
  vsnprintf(line, sizeof line, format, args);
  va_end(args);
  // One fprintf per line so lines from two threads never interleave.
  fprintf(stderr, "%s.%03ldZ flux: %s\n", stamp, now.tv_nsec / 1000000, line);
}

}  // namespace flux
