#pragma once
// HttpTaskQueue: how the metrics port's connections get threads.
//
// cpp-httplib 0.11 gives each accepted connection to a task queue, and the
// task holds its thread for the connection's whole life: while it waits for
// a request line, a body, or the next keep-alive request (bounded by the
// read and keep-alive timeouts). With its stock fixed pool of a few
// threads, a handful of idle sockets starves every scrape. Here each
// connection gets a thread of its own, up to kMaxThreads at once (the
// bound on concurrent requests); beyond that, connections wait their turn.
// Threads exist only while there is work: an idle port has none.
//
// Thread contract: enqueue() from the HTTP listener thread; shutdown()
// once, from the thread that stops the server.

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace flux {

class HttpTaskQueue final : public httplib::TaskQueue {
 public:
  explicit HttpTaskQueue(size_t max_threads) : max_threads_(max_threads) {}
  ~HttpTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> task) override;
  // Waits until every queued and running connection is done.
  void shutdown() override;

 private:
  void work();

  const size_t max_threads_;
  std::mutex mutex_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> queue_;
  size_t running_ = 0;
};

}  // namespace flux
