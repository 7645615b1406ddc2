#include "metrics/http_task_queue.h"

#include <thread>

namespace flux {

void HttpTaskQueue::enqueue(std::function<void()> task) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(task));
  if (running_ >= max_threads_) return;  // a running thread will take it
  ++running_;
  std::thread([this] { work(); }).detach();  // shutdown() waits for it
}

// Takes connections until none is left, then the thread ends.
void HttpTaskQueue::work() {
  std::unique_lock lock(mutex_);
  while (!queue_.empty()) {
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
  --running_;
  idle_.notify_all();
}

void HttpTaskQueue::shutdown() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return running_ == 0 && queue_.empty(); });
}

}  // namespace flux
