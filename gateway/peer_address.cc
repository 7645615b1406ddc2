#include "gateway/peer_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>

namespace flux {

std::string format_peer(const sockaddr_storage& peer) {
  char host[INET6_ADDRSTRLEN] = "?";
  char text[INET6_ADDRSTRLEN + 16];
  if (peer.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&peer);
    inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
    snprintf(text, sizeof text, "%s:%u", host, unsigned{ntohs(v4->sin_port)});
    return text;
  }
  if (peer.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&peer);
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
    snprintf(text, sizeof text, "[%s]:%u", host, unsigned{ntohs(v6->sin6_port)});
    return text;
  }
  return "local";
}

}  // namespace flux
