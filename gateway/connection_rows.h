#pragma once
// The rows of GET /connections for one reactor: a copy of every open
// connection's figures (never its session id), built on the reactor thread
// when the metrics thread asks for them by post().
//
// Thread contract: reactor thread only (the rows are then handed over).

#include <cstdint>
#include <string>
#include <vector>

#include "gateway/connection_registry.h"
#include "metrics/connection_info.h"

namespace flux {

// Rows [begin, begin + count) of the registry's current order (a listing
// takes them in slices, one per loop turn, so that 19,000 connections and a
// TCP_INFO call each never hold the loop at once).
std::vector<ConnectionInfo> connection_rows(const ConnectionRegistry& connections,
                                            const std::string& reactor_label, size_t begin = 0,
                                            size_t count = SIZE_MAX);

// The peer of connection `id` ("" if there is none): one pass, asked once
// per stall by the watchdog, never per frame.
std::string connection_peer(const ConnectionRegistry& connections, uint64_t id);

}  // namespace flux
