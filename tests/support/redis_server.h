#pragma once

// RedisServer: a real redis-server (Debian's, /usr/bin/redis-server) in a
// child process on a free loopback port, for the session store's tests.
//
//   start()    picks a free 127.0.0.1 port, spawns redis-server there (no
//              persistence: --save '' --appendonly no) and waits for PONG
//   kill()     SIGKILL (Redis dies as a crashed server would)
//   restart()  start again on the same port (the gateway reconnects to it)
//   pause() / resume()  SIGSTOP / SIGCONT: a Redis that stops answering
//   command()  one command over a blocking hiredis connection of the test's
//              own, answered as text: what the store wrote, read back
//
// Thread contract: the test thread only. The destructor kills the server.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace flux::itest {

class RedisServer {
 public:
  RedisServer() = default;
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  [[nodiscard]] ::testing::AssertionResult start();
  [[nodiscard]] ::testing::AssertionResult restart();
  void kill();
  void pause();
  void resume();

  uint16_t port() const { return port_; }
  // "redis://127.0.0.1:<port>", for --session-store.
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // The reply as text: a string or status as it is, an integer in decimal,
  // nil as "(nil)", an error as "ERR ...", an array as its elements joined
  // by '\n'. Empty (and a test failure) if Redis cannot be reached.
  std::string command(const std::vector<std::string>& argv);

 private:
  ::testing::AssertionResult spawn_and_wait();

  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace flux::itest
