#include "gateway/admission.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>
#include <string_view>

#include "gateway/frame_parser.h"
#include "gateway/protocol.h"

namespace flux {

bool Admission::admit(const Fd& fd) {
  if (admitted_.fetch_add(1, std::memory_order_relaxed) >= max_connections_) {
    admitted_.fetch_sub(1, std::memory_order_relaxed);
    reject_server_full(fd);
    return false;
  }
  int one = 1;  // echoes are small and latency-bound: no Nagle delay
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return true;
}

// One non-blocking write of the error (a fresh socket's buffer always has
// room for 26 bytes), then close. What already arrived (a PROXY header, an
// eager HELLO) is read and dropped first: closing with unread input would
// send an RST that can destroy the error.
void Admission::reject_server_full(const Fd& fd) {
  (void)::recv(fd.get(), discard_scratch_.data(), discard_scratch_.size(), MSG_DONTWAIT);
  static constexpr std::string_view kText = "FLUX_ERROR server-full";
  std::byte frame[kFrameHeaderSize + kText.size()];
  encode_frame_header(static_cast<uint32_t>(kText.size()), frame);
  std::memcpy(frame + kFrameHeaderSize, kText.data(), kText.size());
  ssize_t written = ::send(fd.get(), frame, sizeof frame, MSG_NOSIGNAL);
  if (written > 0) metrics_.traffic.bytes_out_total.add(static_cast<uint64_t>(written));
  metrics_.traffic.protocol_errors_total[static_cast<int>(ErrorCode::kServerFull)].add();
  metrics_.connections.closed_total[static_cast<int>(CloseReason::kServerFull)].add();
  ::shutdown(fd.get(), SHUT_WR);  // FIN after the error, so it is read before EOF
}

}  // namespace flux
