#pragma once
// ConnectionRegistry: the connections a reactor serves, and when they die.
//
//   add()                   a new Connection, owned here
//   on_connection_closed()  (ConnectionOwner) noted, not destroyed yet
//   reap_closed()           between loop iterations: destroyed
//
// A connection is destroyed outside its own callbacks, never by `delete
// this`. Removal is O(1): each connection keeps its slot, and the last one
// takes the slot of the one removed (the order is not kept).
//
// Thread contract: reactor thread only.

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "gateway/admission.h"
#include "gateway/connection.h"
#include "gateway/reactor_context.h"

namespace flux {

class ConnectionRegistry final : public ConnectionOwner {
 public:
  // Closed connections that were admitted are released from `admission`.
  explicit ConnectionRegistry(Admission& admission);
  ~ConnectionRegistry();
  ConnectionRegistry(const ConnectionRegistry&) = delete;
  ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;

  // A connection on `fd`, not started yet (the caller chooses how).
  Connection& add(ReactorContext& context, Fd fd, const sockaddr_storage& peer);
  void on_connection_closed(Connection& connection) noexcept override;
  // Destroys the connections closed since the last call.
  void reap_closed() noexcept;
  // Destroys every connection now (before the event base they use goes).
  void clear() noexcept;

  size_t size() const noexcept { return connections_.size(); }
  bool empty() const noexcept { return connections_.empty(); }
  template <typename Visit>
  void for_each(Visit&& visit) {
    for (auto& connection : connections_) visit(*connection);
  }
  template <typename Visit>
  void for_each(Visit&& visit) const {
    for (const auto& connection : connections_) visit(std::as_const(*connection));
  }

 private:
  Admission& admission_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> closed_;  // reaped after the current iteration
  uint64_t next_id_ = 1;
};

}  // namespace flux
