#include "support/test_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

namespace flux::itest {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kHeaderBytes = 4;
constexpr size_t kSessionIdChars = 32;
constexpr std::string_view kReadyPrefix = "FLUX_READY ";
constexpr std::string_view kFreshSeqSuffix = " 0";

uint32_t decode_header(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Where two payloads first differ, for echo mismatch messages.
size_t first_difference(std::string_view a, std::string_view b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

std::string errno_text(int err) {
  return std::string(std::strerror(err));
}

}  // namespace

std::string encode_header(uint32_t length) {
  std::string h(kHeaderBytes, '\0');
  h[0] = static_cast<char>((length >> 24) & 0xff);
  h[1] = static_cast<char>((length >> 16) & 0xff);
  h[2] = static_cast<char>((length >> 8) & 0xff);
  h[3] = static_cast<char>(length & 0xff);
  return h;
}

std::string encode_frame(std::string_view payload) {
  std::string frame = encode_header(static_cast<uint32_t>(payload.size()));
  frame.append(payload);
  return frame;
}

std::string encode_frames(const std::vector<std::string>& payloads) {
  std::string out;
  for (const auto& p : payloads) out += encode_frame(p);
  return out;
}

std::string make_payload(uint64_t seed, size_t size) {
  // "#<seed>:" (cut to `size` if longer) then a byte pattern that also
  // depends on the position, so a shifted or spliced echo differs too.
  std::string p = "#";
  p += std::to_string(seed);
  p += ':';
  const size_t prefix = std::min(size, p.size());
  p.resize(size);
  for (size_t i = prefix; i < size; ++i) {
    p[i] = static_cast<char>((seed * 131 + i * 7 + (i >> 8)) & 0xff);
  }
  return p;
}

std::string describe_payload(std::string_view payload) {
  constexpr size_t kShown = 64;
  std::string out = "\"";
  for (size_t i = 0; i < payload.size() && i < kShown; ++i) {
    const auto c = static_cast<unsigned char>(payload[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  out += "\"";
  if (payload.size() > kShown) out += "... (" + std::to_string(payload.size()) + " bytes)";
  return out;
}

bool is_fresh_ready(std::string_view payload, std::string* session_id) {
  if (payload.size() != kReadyPrefix.size() + kSessionIdChars + kFreshSeqSuffix.size()) {
    return false;
  }
  if (payload.substr(0, kReadyPrefix.size()) != kReadyPrefix) return false;
  const auto id = payload.substr(kReadyPrefix.size(), kSessionIdChars);
  if (!is_lower_hex(id)) return false;
  if (payload.substr(kReadyPrefix.size() + kSessionIdChars) != kFreshSeqSuffix) return false;
  if (session_id != nullptr) *session_id = std::string(id);
  return true;
}

TestClient::~TestClient() {
  close();
}

TestClient::TestClient(TestClient&& other) noexcept {
  *this = std::move(other);
}

TestClient& TestClient::operator=(TestClient&& other) noexcept {
  if (this == &other) return *this;
  close();
  fd_ = std::exchange(other.fd_, -1);
  receive_buffer_ = other.receive_buffer_;
  send_buffer_ = other.send_buffer_;
  in_ = std::move(other.in_);
  in_pos_ = std::exchange(other.in_pos_, 0);
  eof_ = other.eof_;
  reset_seen_ = other.reset_seen_;
  last_error_ = std::move(other.last_error_);
  return *this;
}

void TestClient::set_buffer_sizes(int receive_bytes, int send_bytes) {
  receive_buffer_ = receive_bytes;
  send_buffer_ = send_bytes;
}

::testing::AssertionResult TestClient::open_socket(std::string_view source) {
  close();
  in_.clear();
  in_pos_ = 0;
  eof_ = reset_seen_ = false;
  last_error_.clear();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return ::testing::AssertionFailure() << "socket(): " << errno_text(errno);
  // Tests send headers and payload pieces as separate writes on purpose;
  // Nagle would merge them and hide the split from the server.
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (receive_buffer_ > 0) {
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_, sizeof receive_buffer_);
  }
  if (send_buffer_ > 0) {
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &send_buffer_, sizeof send_buffer_);
  }
  if (source.empty()) return ::testing::AssertionSuccess();
  sockaddr_in local{};
  local.sin_family = AF_INET;
  const std::string src(source);
  if (::inet_pton(AF_INET, src.c_str(), &local.sin_addr) != 1) {
    return ::testing::AssertionFailure() << "bad source address " << src;
  }
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    return ::testing::AssertionFailure() << "bind(" << src << "): " << errno_text(errno);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult TestClient::start_connect(uint16_t port, std::string_view source) {
  if (auto opened = open_socket(source); !opened) return opened;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    return ::testing::AssertionSuccess();
  }
  if (errno == EINPROGRESS) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "connect(127.0.0.1:" << port << "): " << errno_text(errno);
}

::testing::AssertionResult TestClient::finish_connect(Deadline deadline) {
  if (fd_ < 0) return ::testing::AssertionFailure() << "finish_connect without a socket";
  if (!wait_for(POLLOUT, deadline)) {
    return ::testing::AssertionFailure() << "connect did not complete by the deadline";
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return ::testing::AssertionFailure() << "connect: " << errno_text(err);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult TestClient::connect(uint16_t port, std::string_view source,
                                               Deadline deadline) {
  if (auto started = start_connect(port, source); !started) return started;
  return finish_connect(deadline);
}

size_t TestClient::send_available(std::string_view bytes) {
  size_t sent = 0;
  while (fd_ >= 0 && sent < bytes.size()) {
    // MSG_NOSIGNAL: a peer that closed must fail the test, not kill it.
    const ssize_t n =
        ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) note_error("send", errno);
    break;
  }
  return sent;
}

::testing::AssertionResult TestClient::send_raw(std::string_view bytes, Deadline deadline) {
  if (fd_ < 0) return ::testing::AssertionFailure() << "send on a closed client";
  size_t sent = 0;
  while (sent < bytes.size()) {
    last_error_.clear();
    sent += send_available(bytes.substr(sent));
    if (!last_error_.empty()) {
      return ::testing::AssertionFailure()
             << "after " << sent << "/" << bytes.size() << " bytes: " << state();
    }
    if (sent < bytes.size() && !wait_for(POLLOUT, deadline)) {
      return ::testing::AssertionFailure()
             << "send stalled after " << sent << "/" << bytes.size() << " bytes until the deadline";
    }
  }
  return ::testing::AssertionSuccess();
}

size_t TestClient::send_until_stalled(std::string_view bytes, Clock::duration stall,
                                      Deadline deadline) {
  size_t sent = 0;
  while (sent < bytes.size() && last_error_.empty()) {
    sent += send_available(bytes.substr(sent));
    const Deadline stall_deadline = std::min(deadline, Clock::now() + stall);
    if (sent < bytes.size() && !wait_for(POLLOUT, stall_deadline)) break;
  }
  return sent;
}

::testing::AssertionResult TestClient::send_frame(std::string_view payload, Deadline deadline) {
  return send_raw(encode_frame(payload), deadline);
}

size_t TestClient::receive_available() {
  std::array<char, kReadChunk> chunk;
  size_t total = 0;
  while (fd_ >= 0 && !peer_closed()) {
    const ssize_t n = ::read(fd_, chunk.data(), chunk.size());
    if (n > 0) {
      in_.append(chunk.data(), static_cast<size_t>(n));
      total += static_cast<size_t>(n);
    } else if (n == 0) {
      eof_ = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    } else if (errno == ECONNRESET) {
      reset_seen_ = true;
    } else {
      note_error("read", errno);
      break;
    }
  }
  return total;
}

std::optional<std::string> TestClient::pop_frame() {
  if (unread_bytes() < kHeaderBytes) return std::nullopt;
  const size_t length = decode_header(in_.data() + in_pos_);
  if (unread_bytes() < kHeaderBytes + length) return std::nullopt;
  std::string payload = in_.substr(in_pos_ + kHeaderBytes, length);
  in_pos_ += kHeaderBytes + length;
  compact_input();
  return payload;
}

void TestClient::compact_input() {
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > (1u << 20) && in_pos_ > in_.size() / 2) {
    // Keeps a long echo stream from growing the buffer without bound.
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
}

std::optional<std::string> TestClient::read_frame(Deadline deadline) {
  for (;;) {
    if (auto frame = pop_frame()) return frame;
    if (peer_closed() || fd_ < 0) return std::nullopt;
    if (!wait_for(POLLIN, deadline)) return std::nullopt;
    receive_available();
  }
}

::testing::AssertionResult TestClient::expect_frame(std::string_view expected, Deadline deadline) {
  const auto frame = read_frame(deadline);
  if (!frame) {
    return ::testing::AssertionFailure()
           << "expected frame " << describe_payload(expected) << ", got none (" << state() << ")";
  }
  if (*frame != expected) {
    return ::testing::AssertionFailure() << "expected frame " << describe_payload(expected)
                                         << ", got " << describe_payload(*frame);
  }
  return ::testing::AssertionSuccess();
}

bool TestClient::wait_closed(Deadline deadline) {
  for (;;) {
    if (peer_closed()) return true;
    if (fd_ < 0 || !wait_for(POLLIN, deadline)) return peer_closed();
    receive_available();
  }
}

::testing::AssertionResult TestClient::expect_closed(Deadline deadline) {
  if (!wait_closed(deadline)) {
    return ::testing::AssertionFailure()
           << "server did not close by the deadline (" << state() << ")";
  }
  if (unread_bytes() == 0) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure() << "server sent more before closing:";
  while (auto frame = pop_frame()) failure << " " << describe_payload(*frame);
  if (unread_bytes() > 0) failure << " + " << unread_bytes() << " bytes of a partial frame";
  return failure;
}

::testing::AssertionResult TestClient::handshake(Deadline deadline, std::string* session_id) {
  if (auto sent = send_frame("FLUX_HELLO", deadline); !sent) return sent;
  const auto reply = read_frame(deadline);
  if (!reply) {
    return ::testing::AssertionFailure() << "no reply to FLUX_HELLO (" << state() << ")";
  }
  if (!is_fresh_ready(*reply, session_id)) {
    return ::testing::AssertionFailure() << "FLUX_HELLO answered " << describe_payload(*reply)
                                         << ", expected FLUX_READY <32 lowercase hex> 0";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult TestClient::echo_stream(const std::vector<std::string>& payloads,
                                                   Deadline deadline, size_t bytes_already_sent) {
  const std::string out = encode_frames(payloads);
  size_t sent = bytes_already_sent;
  size_t echoed = 0;
  for (;;) {
    while (echoed < payloads.size()) {
      const auto frame = pop_frame();
      if (!frame) break;
      const auto& want = payloads[echoed];
      if (*frame != want) {
        return ::testing::AssertionFailure()
               << "echo #" << echoed << " differs at byte " << first_difference(*frame, want)
               << ": expected " << describe_payload(want) << ", got " << describe_payload(*frame);
      }
      ++echoed;
    }
    if (echoed == payloads.size()) return ::testing::AssertionSuccess();
    if (peer_closed() || !last_error_.empty()) {
      return ::testing::AssertionFailure() << "connection ended after " << echoed << "/"
                                           << payloads.size() << " echoes (" << state() << ")";
    }
    const short events = static_cast<short>(POLLIN | (sent < out.size() ? POLLOUT : 0));
    pollfd pfd{fd_, events, 0};
    const int ready = ::poll(&pfd, 1, poll_timeout_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      return ::testing::AssertionFailure()
             << "deadline with " << sent << "/" << out.size() << " bytes sent and " << echoed << "/"
             << payloads.size() << " echoes received (" << state() << ")";
    }
    if (pfd.revents & POLLOUT) sent += send_available(std::string_view(out).substr(sent));
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) receive_available();
  }
}

void TestClient::reset() {
  if (fd_ < 0) return;
  // SO_LINGER with a zero timeout makes close() abort the connection: the
  // kernel drops unsent data and sends an RST.
  const linger abort_on_close{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
  close();
}

void TestClient::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void TestClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool TestClient::wait_for(short events, Deadline deadline) {
  for (;;) {
    pollfd pfd{fd_, events, 0};
    const int ready = ::poll(&pfd, 1, poll_timeout_ms(deadline));
    if (ready > 0) return true;
    if (ready == 0) return false;
    if (errno != EINTR) {
      note_error("poll", errno);
      return false;
    }
  }
}

void TestClient::note_error(const char* what, int err) {
  if (err == ECONNRESET || err == EPIPE) reset_seen_ = true;
  last_error_ = std::string(what) + ": " + errno_text(err);
}

std::string TestClient::state() const {
  std::string s = fd_ < 0 ? "socket closed" : eof_ ? "EOF from server" : "open";
  if (reset_seen_) s = "reset by server";
  s += ", " + std::to_string(unread_bytes()) + " unread bytes";
  if (!last_error_.empty()) s += ", " + last_error_;
  return s;
}

}  // namespace flux::itest
