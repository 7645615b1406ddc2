#include "support/redis_server.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>

#include "support/deadline.h"
#include "support/subprocess.h"

namespace flux::itest {
namespace {

constexpr const char* kRedisServer = "/usr/bin/redis-server";

// A port nobody listens on right now (the kernel's pick, released at once).
uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0)
    port = ntohs(address.sin_port);
  ::close(fd);
  return port;
}

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

ContextPtr connect_to(uint16_t port) {
  const timeval timeout{2, 0};
  return ContextPtr(redisConnectWithTimeout("127.0.0.1", port, timeout));
}

std::string reply_text(const redisReply* reply) {
  switch (reply->type) {
    case REDIS_REPLY_INTEGER:
      return std::to_string(reply->integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string out;
      for (size_t i = 0; i < reply->elements; ++i) {
        if (i > 0) out += '\n';
        out += reply_text(reply->element[i]);
      }
      return out;
    }
    default:
      return std::string(reply->str, reply->len);
  }
}

}  // namespace

RedisServer::~RedisServer() {
  kill();
}

::testing::AssertionResult RedisServer::start() {
  port_ = free_loopback_port();
  if (port_ == 0) return ::testing::AssertionFailure() << "no free loopback port";
  return spawn_and_wait();
}

::testing::AssertionResult RedisServer::restart() {
  kill();
  return spawn_and_wait();
}

::testing::AssertionResult RedisServer::spawn_and_wait() {
  ChildSpec spec;
  spec.argv = {
      kRedisServer,   "--port", std::to_string(port_), "--bind", "127.0.0.1",  "--save", "",
      "--appendonly", "no",     "--daemonize",         "no",     "--loglevel", "warning"};
  // Its start banner and warnings are not the test's output: stdout and stderr to /dev/null.
  const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  spec.stdout_fd = null_fd;
  spec.stderr_fd = null_fd;
  pid_ = spawn(spec);
  if (null_fd >= 0) ::close(null_fd);
  if (pid_ < 0) return ::testing::AssertionFailure() << "cannot start " << kRedisServer;
  // Ready when it answers PING (connection refused until it listens).
  const Deadline deadline = after(std::chrono::seconds(10));
  while (Clock::now() < deadline) {
    if (try_wait(pid_))
      return ::testing::AssertionFailure() << "redis-server exited at start (port " << port_ << ")";
    ContextPtr context = connect_to(port_);
    if (context && !context->err) {
      auto* reply = static_cast<redisReply*>(redisCommand(context.get(), "PING"));
      const bool pong = reply && reply->type == REDIS_REPLY_STATUS;
      if (reply) freeReplyObject(reply);
      if (pong) return ::testing::AssertionSuccess();
    }
    // Not listening yet: poll again shortly (bounded by the deadline).
    ::usleep(20'000);
  }
  return ::testing::AssertionFailure() << "redis-server did not answer PING within 10 s";
}

void RedisServer::kill() {
  if (pid_ > 0) kill_and_wait(pid_);
  pid_ = -1;
}

void RedisServer::pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisServer::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

std::string RedisServer::command(const std::vector<std::string>& argv) {
  ContextPtr context = connect_to(port_);
  if (!context || context->err) {
    ADD_FAILURE() << "cannot reach redis on port " << port_;
    return {};
  }
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const std::string& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(context.get(), static_cast<int>(args.size()), args.data(), lengths.data()));
  if (!reply) {
    ADD_FAILURE() << "redis command failed: " << context->errstr;
    return {};
  }
  std::string text = reply_text(reply);
  freeReplyObject(reply);
  return text;
}

}  // namespace flux::itest
