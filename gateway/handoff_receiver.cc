#include "gateway/handoff_receiver.h"

#include <memory>

namespace flux {

void HandoffReceiver::deliver(ConnectionHandoff handoff) {
  in_flight_.fetch_add(1);  // before the post: the owner cannot finish its shutdown meanwhile
  // std::function needs a copyable callable: the move-only hand-off rides
  // in a shared_ptr (its Fd closes the socket if the task is never run).
  auto parcel = std::make_shared<ConnectionHandoff>(std::move(handoff));
  tasks_.post([this, parcel] {
    receive_(std::move(*parcel));
    in_flight_.fetch_sub(1);
  });
}

}  // namespace flux
