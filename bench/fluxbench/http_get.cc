#include "bench/fluxbench/http_get.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "bench/fluxbench/clock.h"
#include "common/fd.h"

namespace flux::bench {
namespace {

constexpr size_t kMaxResponseBytes = 16u << 20;

int ms_left(uint64_t deadline_ns) {
  const uint64_t now = mono_ns();
  if (now >= deadline_ns) return 0;
  return static_cast<int>((deadline_ns - now + kNsPerMs - 1) / kNsPerMs);
}

// Waits until `fd` is ready for `events`; false on timeout or error.
bool wait_for(int fd, short events, uint64_t deadline_ns) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int left = ms_left(deadline_ns);
    if (left == 0) return false;
    const int n = ::poll(&p, 1, left);
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

bool connect_bounded(int fd, const HttpUrl& url, uint64_t deadline_ns) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(url.port);
  sa.sin_addr.s_addr = url.addr;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) return true;
  if (errno != EINPROGRESS || !wait_for(fd, POLLOUT, deadline_ns)) return false;
  int error = 0;
  socklen_t len = sizeof error;
  return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0;
}

bool send_all(int fd, std::string_view data, uint64_t deadline_ns) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EAGAIN) {
      if (!wait_for(fd, POLLOUT, deadline_ns)) return false;
    } else if (n < 0 && errno != EINTR) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> read_all(int fd, uint64_t deadline_ns) {
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return out;
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      if (out.size() > kMaxResponseBytes) return std::nullopt;
    } else if (errno == EAGAIN) {
      if (!wait_for(fd, POLLIN, deadline_ns)) return std::nullopt;
    } else if (errno != EINTR) {
      return std::nullopt;
    }
  }
}

std::optional<HttpResponse> parse_response(const std::string& raw) {
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  if (raw.size() < 12 || raw.compare(0, 5, "HTTP/") != 0) return std::nullopt;
  const size_t space = raw.find(' ');
  const size_t header_end = raw.find("\r\n\r\n");
  if (space == std::string::npos || header_end == std::string::npos) return std::nullopt;
  HttpResponse response;
  const char* first = raw.data() + space + 1;
  if (std::from_chars(first, first + 3, response.status).ec != std::errc{}) return std::nullopt;
  response.body = raw.substr(header_end + 4);
  return response;
}

}  // namespace

std::optional<HttpUrl> parse_http_url(std::string_view text) {
  constexpr std::string_view kScheme = "http://";
  if (!text.starts_with(kScheme)) return std::nullopt;
  text.remove_prefix(kScheme.size());
  HttpUrl url;
  const size_t slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  if (slash != std::string_view::npos) url.path = std::string(text.substr(slash));
  url.host = std::string(authority);
  if (const size_t colon = authority.find(':'); colon != std::string_view::npos) {
    const std::string_view port = authority.substr(colon + 1);
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), url.port);
    if (ec != std::errc{} || end != port.data() + port.size() || url.port == 0) return std::nullopt;
    authority = authority.substr(0, colon);
  }
  const std::string host = authority == "localhost" ? "127.0.0.1" : std::string(authority);
  in_addr addr{};
  if (::inet_pton(AF_INET, host.c_str(), &addr) != 1) return std::nullopt;
  url.addr = addr.s_addr;
  return url;
}

std::optional<HttpResponse> http_get(const HttpUrl& url, int timeout_ms) {
  const uint64_t deadline = mono_ns() + static_cast<uint64_t>(timeout_ms) * kNsPerMs;
  Fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (!fd || !connect_bounded(fd.get(), url, deadline)) return std::nullopt;
  const std::string request = "GET " + url.path + " HTTP/1.1\r\nHost: " + url.host +
                              "\r\nUser-Agent: fluxbench\r\nConnection: close\r\n\r\n";
  if (!send_all(fd.get(), request, deadline)) return std::nullopt;
  const auto raw = read_all(fd.get(), deadline);
  if (!raw) return std::nullopt;
  return parse_response(*raw);
}

}  // namespace flux::bench
