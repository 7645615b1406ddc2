#pragma once
// What the metrics thread may reach of a reactor (metrics/metrics_server.h,
// ReactorHandle): its metrics block (atomics, read directly), its watchdog
// group (written by the watchdog thread), and by message, built on the
// reactor's own thread, its connection listing and a connection's peer.
// And how a stall is logged: one warn line, no payload byte.
//
// Thread contract: metrics_handle() before the reactors run; the handle's
// functions from any thread; log_stall() from any thread.

#include "gateway/reactor.h"
#include "metrics/metrics_server.h"
#include "metrics/stall_watchdog.h"

namespace flux {

ReactorHandle metrics_handle(Reactor& reactor);

// The "loop-stall" log line of one stall (once it is over).
void log_stall(const StallRecord& stall);

}  // namespace flux
