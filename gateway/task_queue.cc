#include "gateway/task_queue.h"

namespace flux {

TaskQueue::TaskQueue(event_base* base, LoopClock& loop_clock)
    : loop_clock_(loop_clock),
      posted_event_(event_new(base, -1, 0, on_posted_cb, this)),
      next_turn_event_(evtimer_new(base, on_next_turn_cb, this)) {}

void TaskQueue::post(Task task) {
  {
    std::lock_guard lock(mutex_);
    posted_.push_back(std::move(task));
  }
  event_active(posted_event_.get(), 0, 0);
}

void TaskQueue::on_posted_cb(evutil_socket_t, short, void* self) {
  auto* queue = static_cast<TaskQueue*>(self);
  queue->loop_clock_.on_callback(Activity::kTask);
  queue->run_posted();
}

void TaskQueue::post_next_turn(Task task) {
  next_turn_.push_back(std::move(task));
  if (next_turn_.size() > 1) return;  // already armed
  timeval zero{0, 0};
  evtimer_add(next_turn_event_.get(), &zero);
}

void TaskQueue::on_next_turn_cb(evutil_socket_t, short, void* self) {
  auto* queue = static_cast<TaskQueue*>(self);
  queue->loop_clock_.on_callback(Activity::kTask);
  std::vector<Task> tasks;
  tasks.swap(queue->next_turn_);
  for (auto& task : tasks) task();
}

// The list is swapped out under the lock and run outside it, so a task may
// post again (it then runs at the next turn).
void TaskQueue::run_posted() {
  std::vector<Task> tasks;
  {
    std::lock_guard lock(mutex_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) task();
}

}  // namespace flux
