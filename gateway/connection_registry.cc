#include "gateway/connection_registry.h"

namespace flux {

ConnectionRegistry::ConnectionRegistry(Admission& admission) : admission_(admission) {
  connections_.reserve(1024);
  closed_.reserve(1024);
}

ConnectionRegistry::~ConnectionRegistry() {
  clear();
}

Connection& ConnectionRegistry::add(ReactorContext& context, Fd fd, const sockaddr_storage& peer) {
  auto connection = std::make_unique<Connection>(context, *this, std::move(fd), next_id_++, peer);
  connection->slot = connections_.size();
  connections_.push_back(std::move(connection));
  return *connections_.back();
}

void ConnectionRegistry::on_connection_closed(Connection& connection) noexcept {
  closed_.push_back(&connection);
}

// Swap-and-pop: O(1) per closed connection.
void ConnectionRegistry::reap_closed() noexcept {
  for (Connection* closed : closed_) {
    const size_t slot = closed->slot;
    if (slot != connections_.size() - 1) {
      std::swap(connections_[slot], connections_.back());
      connections_[slot]->slot = slot;
    }
    // A connection handed to another member is still open (over there).
    if (!closed->handed_off()) admission_.release();
    connections_.pop_back();
  }
  closed_.clear();
}

void ConnectionRegistry::clear() noexcept {
  for (auto& connection : connections_) connection.reset();
  connections_.clear();
  closed_.clear();
}

}  // namespace flux
