#pragma once
// HttpTaskQueue: the metrics port's handler threads.
//
// HttpFront does all socket I/O on its own thread and hands complete,
// validated requests whose handlers take time (/metrics, /stats,
// /connections) to these threads. The pool is fixed and small: a request
// holds a thread only while its handler runs, never while a client is slow
// to send or to read, so a few threads serve any number of clients.
//
// Thread contract: post() from any thread; shutdown() (or the destructor)
// once, from the thread that owns the queue and not from a task.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace flux {

class HttpTaskQueue {
 public:
  explicit HttpTaskQueue(size_t threads);
  ~HttpTaskQueue() { shutdown(); }
  HttpTaskQueue(const HttpTaskQueue&) = delete;
  HttpTaskQueue& operator=(const HttpTaskQueue&) = delete;

  // Runs `task` on one of the threads, in the order posted. Ignored after shutdown().
  void post(std::function<void()> task);
  // Drops the tasks not started yet, waits for the running ones and joins.
  void shutdown();

 private:
  void work();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace flux
