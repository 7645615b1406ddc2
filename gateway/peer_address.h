#pragma once
// A connection's peer as people read it: "127.0.0.1:5000", "[::1]:5000",
// or "local" for anything that is not IP (a socketpair in a harness).
// For /connections and log lines; never on the data path.

#include <sys/socket.h>

#include <string>

namespace flux {

std::string format_peer(const sockaddr_storage& peer);

}  // namespace flux
