#pragma once
// Opening client sockets: non-blocking, TCP_NODELAY, bound to a source
// address of 127.0.0.1..127.0.0.K before connect() when the target is on
// loopback, so that K x ~28k ephemeral ports are available instead of 28k.
// IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(), which can
// then reuse a port number across different destinations.
//
// Thread contract: free functions, any thread.

#include <netinet/in.h>

#include <cstdint>

#include "common/fd.h"

namespace flux::bench {

struct Target {
  in_addr_t addr = 0;  // network order
  uint16_t port = 0;
  bool loopback = true;
  unsigned src_ips = 1;
};

struct ConnectStart {
  Fd fd;          // valid while the connect is in progress (or done)
  int error = 0;  // errno when fd is not valid
};

// Starts a non-blocking connect for connection number `global_index`
// (which picks its source address).
ConnectStart start_connect(const Target& target, uint32_t global_index);

// 0 once a connect in progress has succeeded, else its errno (SO_ERROR).
int connect_error(int fd);

}  // namespace flux::bench
