#pragma once
// RAII owners for libevent objects, in the manner of Envoy's libevent.h:
// a unique_ptr alias with a deleter per C type. Destroying an EventPtr
// removes the event from its base (event_free calls event_del).

#include <event2/event.h>

#include <memory>

namespace flux {

struct EventBaseDeleter {
  void operator()(event_base* base) const noexcept { event_base_free(base); }
};
struct EventDeleter {
  void operator()(event* ev) const noexcept { event_free(ev); }
};
struct EventConfigDeleter {
  void operator()(event_config* cfg) const noexcept { event_config_free(cfg); }
};

using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;
using EventPtr = std::unique_ptr<event, EventDeleter>;
using EventConfigPtr = std::unique_ptr<event_config, EventConfigDeleter>;

}  // namespace flux
