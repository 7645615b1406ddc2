#pragma once
// HandoffReceiver: the owner's end of a connection hand-off
// (connection_handoff.h). Another reactor delivers a connection whose
// session this reactor owns; it is received here, on this reactor's thread,
// at its next loop turn.
//
// Each delivery is counted from the moment it is sent until it has been
// received, so that the reactor does not finish its shutdown while a
// connection is on its way to it (the socket would be lost unanswered).
//
// Thread contract: deliver() from any thread; the receive callback runs on
// the reactor thread; in_flight() from any thread.

#include <atomic>
#include <cstdint>
#include <functional>

#include "gateway/connection_handoff.h"
#include "gateway/task_queue.h"

namespace flux {

class HandoffReceiver {
 public:
  using Receive = std::function<void(ConnectionHandoff)>;

  HandoffReceiver(TaskQueue& tasks, Receive receive)
      : tasks_(tasks), receive_(std::move(receive)) {}
  HandoffReceiver(const HandoffReceiver&) = delete;
  HandoffReceiver& operator=(const HandoffReceiver&) = delete;

  // Any thread: `handoff` is received on the reactor thread at its next turn.
  void deliver(ConnectionHandoff handoff);
  // True while a delivered connection has not been received yet.
  bool in_flight() const noexcept { return in_flight_.load() > 0; }

 private:
  TaskQueue& tasks_;
  Receive receive_;
  std::atomic<uint64_t> in_flight_{0};
};

}  // namespace flux
