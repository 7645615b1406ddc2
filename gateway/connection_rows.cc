#include "gateway/connection_rows.h"

#include <linux/tcp.h>  // the kernel's struct tcp_info (glibc's lacks tcpi_delivery_rate)
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>

#include "gateway/loop_clock.h"
#include "gateway/peer_address.h"

namespace flux {
namespace {

// TCP_INFO: one getsockopt per row, only when a listing asks.
std::optional<TcpInfo> read_tcp_info(int fd) {
  struct tcp_info raw {};
  socklen_t len = sizeof raw;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &raw, &len) != 0) return std::nullopt;
  TcpInfo out;
  out.rtt_seconds = double(raw.tcpi_rtt) / 1e6;
  out.rttvar_seconds = double(raw.tcpi_rttvar) / 1e6;
  out.retransmits = raw.tcpi_total_retrans;
  out.unacked = raw.tcpi_unacked;
  out.cwnd = raw.tcpi_snd_cwnd;
  // tcpi_delivery_rate came with Linux 4.9: present only if the kernel filled it.
  if (len >= offsetof(struct tcp_info, tcpi_delivery_rate) + sizeof raw.tcpi_delivery_rate)
    out.delivery_rate_bytes_per_second = raw.tcpi_delivery_rate;
  return out;
}

ConnectionInfo row_of(const Connection& c, const std::string& reactor_label, uint64_t now) {
  const Connection::Traffic& t = c.traffic();
  ConnectionInfo row;
  row.id = c.id();
  row.reactor = reactor_label;
  row.peer = format_peer(c.peer());
  row.state = std::string(to_string(c.state()));
  row.age_seconds = double(now - c.created_ns()) / 1e9;
  row.frames_in = t.frames_in;
  row.frames_out = t.frames_out;
  row.bytes_in = t.bytes_in;
  row.bytes_out = t.bytes_out;
  row.bytes_pending = c.pending_bytes();
  const uint64_t last = t.last_frame_ns != 0 ? t.last_frame_ns : c.created_ns();
  row.idle_seconds = now > last ? double(now - last) / 1e9 : 0.0;
  row.paused_seconds = double(c.paused_ns(now)) / 1e9;
  row.seq = c.session_seq();
  row.tcp = read_tcp_info(c.fd());
  return row;
}

}  // namespace

std::vector<ConnectionInfo> connection_rows(const ConnectionRegistry& connections,
                                            const std::string& reactor_label, size_t begin,
                                            size_t count) {
  const uint64_t now = monotonic_ns();
  std::vector<ConnectionInfo> rows;
  const size_t size = connections.size();
  if (begin >= size) return rows;
  const size_t end = count >= size - begin ? size : begin + count;
  rows.reserve(end - begin);
  size_t index = 0;
  connections.for_each([&](const Connection& c) {
    const size_t i = index++;
    if (i < begin || i >= end || c.state() == ConnState::kClosed) return;
    rows.push_back(row_of(c, reactor_label, now));
  });
  return rows;
}

std::string connection_peer(const ConnectionRegistry& connections, uint64_t id) {
  std::string peer;
  connections.for_each([&](const Connection& c) {
    if (c.id() == id && peer.empty()) peer = format_peer(c.peer());
  });
  return peer;
}

}  // namespace flux
