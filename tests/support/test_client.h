#pragma once

// TestClient: one loopback TCP connection to the gateway under test, driven
// with blocking-style calls that are all bounded by a deadline.
//
// The socket is non-blocking; every wait is a poll() on it for the time left
// until the caller's deadline, so a gateway that never answers makes a test
// fail, never hang. Bytes that arrive are kept in an input buffer and cut into
// frames there, whatever the read boundaries were.
//
// Frame layout (docs/protocol.md section 1), in both directions:
//
//   +----------------------------+-----------------------+
//   | length: u32, big-endian    | payload: length bytes |
//   +----------------------------+-----------------------+
//
// Input buffer:
//
//   +-----------------+---------------------------+
//   | consumed frames | unread bytes (0..n frames, |
//   |                 | maybe a partial one)       |
//   +-----------------+---------------------------+
//   0              in_pos_                    in_.size()
//
// Thread contract: a TestClient is used by one thread at a time. Movable, not
// copyable; the destructor closes the socket (a FIN, or an RST if unread
// input is pending, as the kernel decides).

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/deadline.h"

namespace flux::itest {

// The 4-byte big-endian length header of a frame of `length` payload bytes.
std::string encode_header(uint32_t length);

// Header + payload. `payload` must fit in a u32 length.
std::string encode_frame(std::string_view payload);

// Encodes every payload and concatenates the frames, for coalesced writes.
std::string encode_frames(const std::vector<std::string>& payloads);

// A data payload of `size` bytes whose content depends on `seed`, so that a
// reordered, duplicated or corrupted echo is detected. It starts with '#',
// never with the control prefix FLUX_.
std::string make_payload(uint64_t seed, size_t size);

// A printable, bounded rendering of a payload for failure messages: non-ASCII
// bytes as \xNN, long payloads cut with their length stated.
std::string describe_payload(std::string_view payload);

// True if `payload` is exactly `FLUX_READY <32 lowercase hex> 0`; stores the
// id in `session_id` when given.
bool is_fresh_ready(std::string_view payload, std::string* session_id = nullptr);

class TestClient {
 public:
  TestClient() = default;
  ~TestClient();
  TestClient(TestClient&& other) noexcept;
  TestClient& operator=(TestClient&& other) noexcept;
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  // Socket buffer sizes (bytes, 0 = kernel default) for the next connect.
  // Set before connecting so TCP window scaling agrees with them; a small
  // receive buffer makes "client not reading" visible to the server quickly.
  void set_buffer_sizes(int receive_bytes, int send_bytes);

  // Connects to 127.0.0.1:`port`, from `source` (e.g. "127.0.0.7", any port)
  // when not empty. Fails at `deadline` or on a refused connection.
  ::testing::AssertionResult connect(uint16_t port, std::string_view source = {},
                                     Deadline deadline = after(kPromptWait));

  // The two halves of connect(), so a test can have hundreds of connects in
  // flight at once: start_connect() never waits; finish_connect() waits for
  // the connect to complete.
  ::testing::AssertionResult start_connect(uint16_t port, std::string_view source = {});
  ::testing::AssertionResult finish_connect(Deadline deadline);

  // Sends one frame, waiting for socket space up to `deadline`.
  ::testing::AssertionResult send_frame(std::string_view payload,
                                        Deadline deadline = after(kPromptWait));

  // Sends raw bytes (partial headers, coalesced frames, slowloris dribbles).
  ::testing::AssertionResult send_raw(std::string_view bytes,
                                      Deadline deadline = after(kPromptWait));

  // Writes what the kernel accepts right now without waiting; returns the
  // number of bytes taken (0 when the socket buffer is full or on error).
  size_t send_available(std::string_view bytes);

  // Sends `bytes` without reading, until all are sent, or the socket takes
  // nothing more for `stall` (the peer stopped reading), or `deadline`.
  // Returns the number of bytes sent.
  size_t send_until_stalled(std::string_view bytes, Clock::duration stall, Deadline deadline);

  // The next frame's payload, or nullopt if none is complete by `deadline`
  // or the connection ended first (see state()).
  std::optional<std::string> read_frame(Deadline deadline = after(kPromptWait));

  // The next frame must be exactly `expected`; the failure message says what
  // came instead (another payload, EOF, reset or nothing).
  ::testing::AssertionResult expect_frame(std::string_view expected,
                                          Deadline deadline = after(kPromptWait));

  // Waits for EOF or RST from the server. Bytes that arrive meanwhile are
  // kept unread. True if the connection ended before `deadline`.
  bool wait_closed(Deadline deadline = after(kPromptWait));

  // Like wait_closed(), and there must be no unread bytes left: the server
  // said nothing more before closing.
  ::testing::AssertionResult expect_closed(Deadline deadline = after(kPromptWait));

  // Sends FLUX_HELLO; the answer must be `FLUX_READY <32 lowercase hex> 0`.
  ::testing::AssertionResult handshake(Deadline deadline = after(kPromptWait),
                                       std::string* session_id = nullptr);

  // Sends every payload as a data frame while reading the echoes back at the
  // same time (so a long stream cannot deadlock against back-pressure), and
  // checks each echo is identical and in order. `bytes_already_sent`: how
  // much of encode_frames(payloads) the caller already sent itself.
  ::testing::AssertionResult echo_stream(const std::vector<std::string>& payloads,
                                         Deadline deadline, size_t bytes_already_sent = 0);

  // Closes with SO_LINGER 0, so the kernel sends an RST instead of a FIN.
  void reset();

  // Half-close: shutdown(SHUT_WR) sends a FIN; reading still works.
  void shutdown_write();

  // Closes the socket (FIN). Idempotent.
  void close();

  // Reads whatever is readable now into the input buffer, without waiting.
  // Returns the number of bytes read; notes EOF/RST in state().
  size_t receive_available();

  // Pops the next complete frame already in the input buffer, if any.
  std::optional<std::string> pop_frame();

  // Bytes received and not yet popped as frames.
  size_t unread_bytes() const { return in_.size() - in_pos_; }

  // True once the server's EOF or RST has been seen.
  bool peer_closed() const { return eof_ || reset_seen_; }

  // One line for failure messages: open / EOF / reset, unread bytes, errors.
  std::string state() const;

  // The socket, for tests that poll several clients at once; -1 if closed.
  int fd() const { return fd_; }

 private:
  ::testing::AssertionResult open_socket(std::string_view source);
  // Waits until the socket has `events` (POLLIN/POLLOUT) or `deadline`.
  bool wait_for(short events, Deadline deadline);
  void note_error(const char* what, int err);
  void compact_input();

  int fd_ = -1;
  int receive_buffer_ = 0;
  int send_buffer_ = 0;
  std::string in_;
  size_t in_pos_ = 0;
  bool eof_ = false;
  bool reset_seen_ = false;
  std::string last_error_;
};

}  // namespace flux::itest
