#pragma once
// The rows of GET /connections for one reactor: a copy of every open
// connection's figures (never its session id), built on the reactor thread
// when the metrics thread asks for them by post().
//
// Thread contract: reactor thread only (the rows are then handed over).

#include <string>
#include <vector>

#include "gateway/connection_registry.h"
#include "metrics/connection_info.h"

namespace flux {

std::vector<ConnectionInfo> connection_rows(const ConnectionRegistry& connections,
                                            const std::string& reactor_label);

}  // namespace flux
