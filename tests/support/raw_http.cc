#include "support/raw_http.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace flux::itest {

std::string HttpReply::header(const std::string& name) const {
  auto found = headers.find(name);
  return found == headers.end() ? std::string() : found->second;
}

std::optional<HttpReply> take_reply(std::string& in, bool head_only) {
  const size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos || !in.starts_with("HTTP/1.1 ")) return std::nullopt;
  HttpReply r;
  r.status = std::atoi(in.substr(9, 3).c_str());
  size_t pos = in.find("\r\n") + 2;
  while (pos < end) {
    const size_t eol = in.find("\r\n", pos);
    const std::string line = in.substr(pos, eol - pos);
    const size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    r.headers[name] =
        colon == std::string::npos ? "" : line.substr(line.find_first_not_of(' ', colon + 1));
    pos = eol + 2;
  }
  const size_t length = head_only || r.status == 100 ? 0 : std::stoul(r.header("content-length"));
  if (in.size() < end + 4 + length) return std::nullopt;
  r.body = in.substr(end + 4, length);
  in.erase(0, end + 4 + length);
  return r;
}

int http_status(std::string_view response) {
  if (!response.starts_with("HTTP/1.")) return 0;
  const size_t space = response.find(' ');
  if (space == std::string_view::npos) return 0;
  return std::atoi(std::string(response.substr(space + 1, 3)).c_str());
}

RawHttp::RawHttp(RawHttp&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      in_(std::move(other.in_)),
      closed_(other.closed_),
      broken_(other.broken_) {}

::testing::AssertionResult RawHttp::connect(uint16_t port, Deadline deadline) {
  if (auto started = start_connect(port); !started) return started;
  return finish_connect(deadline);
}

::testing::AssertionResult RawHttp::start_connect(uint16_t port) {
  close();
  closed_ = false;
  broken_ = false;
  in_.clear();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return ::testing::AssertionFailure() << "socket: " << strerror(errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS)
    return ::testing::AssertionFailure() << "connect: " << strerror(errno);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RawHttp::finish_connect(Deadline deadline) {
  if (!wait(POLLOUT, deadline)) return ::testing::AssertionFailure() << "connect timed out";
  int error = 0;
  socklen_t len = sizeof error;
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len);
  if (error != 0) return ::testing::AssertionFailure() << "connect: " << strerror(error);
  return ::testing::AssertionSuccess();
}

bool RawHttp::send(std::string_view bytes, Deadline deadline) {
  while (!bytes.empty()) {
    const size_t n = send_some(bytes);
    bytes.remove_prefix(n);
    if (n == 0 && (broken_ || !wait(POLLOUT, deadline))) return false;
  }
  return true;
}

size_t RawHttp::send_some(std::string_view bytes) {
  const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  if (n > 0) return static_cast<size_t>(n);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) broken_ = true;
  return 0;
}

std::optional<HttpReply> RawHttp::read_reply(Deadline deadline, bool head_only) {
  for (;;) {
    if (auto r = take_reply(in_, head_only)) return r;
    if (!fill(deadline)) return take_reply(in_, head_only);
  }
}

bool RawHttp::wait_closed(Deadline deadline) {
  while (fill(deadline)) {
  }
  return closed_;
}

void RawHttp::read_available() {
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) {
      in_.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed_ = true;
    return;
  }
}

void RawHttp::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// More bytes (true), or EOF/reset/deadline (false).
bool RawHttp::fill(Deadline deadline) {
  if (closed_) return false;
  const size_t before = in_.size();
  while (true) {
    read_available();
    if (in_.size() > before) return true;
    if (closed_ || !wait(POLLIN, deadline)) return false;
  }
}

bool RawHttp::wait(short events, Deadline deadline) {
  pollfd p{fd_, events, 0};
  return ::poll(&p, 1, poll_timeout_ms(deadline)) > 0;
}

}  // namespace flux::itest
