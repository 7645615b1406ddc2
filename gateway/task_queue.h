#pragma once
// TaskQueue: the way into a reactor's thread from any other thread.
//
//   post(task)  any thread: queue the task, wake the loop (event_active)
//   ...         reactor thread, next loop turn: run every queued task in order
//
// A mutex-guarded list and one libevent wake-up: used by /connections and by
// connection hand-offs between reactors, never on the data path.
//
// Thread contract: post() from any thread; tasks run on the loop's thread.
// The event_base must have libevent's locking on (evthread_use_pthreads).

#include <functional>
#include <mutex>
#include <vector>

#include "gateway/libevent_ptr.h"
#include "gateway/loop_clock.h"

namespace flux {

class TaskQueue {
 public:
  using Task = std::function<void()>;

  TaskQueue(event_base* base, LoopClock& loop_clock);
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  // Any thread: runs `task` on the loop's thread at its next turn.
  void post(Task task);
  // Loop thread only: runs `task` in a later loop iteration, after a poll
  // (a zero timer: libevent runs it after the next epoll_wait, while a task
  // posted from a task would run in the same iteration). For work split in
  // slices that must let the loop turn between them.
  void post_next_turn(Task task);

 private:
  static void on_posted_cb(evutil_socket_t, short, void* self);
  static void on_next_turn_cb(evutil_socket_t, short, void* self);
  void run_posted();

  LoopClock& loop_clock_;
  EventPtr posted_event_;  // made active from any thread by post()
  std::mutex mutex_;
  std::vector<Task> posted_;
  EventPtr next_turn_event_;  // a zero timer, armed while next_turn_ is not empty
  std::vector<Task> next_turn_;
};

}  // namespace flux
