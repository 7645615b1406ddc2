#include "bench/fluxbench/connector.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

namespace flux::bench {
namespace {

sockaddr_in ipv4(in_addr_t addr, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = addr;
  sa.sin_port = htons(port);
  return sa;
}

bool bind_source(int fd, const Target& target, uint32_t global_index) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  const in_addr_t src = htonl((127u << 24) | (1u + global_index % target.src_ips));
  const sockaddr_in sa = ipv4(src, 0);
  return ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
}

}  // namespace

ConnectStart start_connect(const Target& target, uint32_t global_index) {
  Fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (!fd) return {Fd{}, errno};
  const int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (target.loopback && !bind_source(fd.get(), target, global_index)) return {Fd{}, errno};
  const sockaddr_in sa = ipv4(target.addr, target.port);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 &&
      errno != EINPROGRESS) {
    return {Fd{}, errno};
  }
  return {std::move(fd), 0};
}

int connect_error(int fd) {
  int error = 0;
  socklen_t len = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) return errno;
  return error;
}

}  // namespace flux::bench
