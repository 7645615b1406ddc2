#pragma once

// RawHttp: one plain TCP connection to an HTTP port (the gateway's metrics
// port), for the bytes no well-behaved client would send: half a request, a
// 100 KB header, a body announced and never sent, pipelined requests, a
// socket that connects and stays silent. Replies are parsed just enough to
// check them (status, headers, a Content-Length body). A well-behaved
// client is MetricsHttp (metrics_http.h).
//
//   start_connect() ... finish_connect(deadline)   many connects in flight at once
//   send(bytes, deadline) / send_some(bytes)       all of it, or what the kernel takes now
//   read_reply(deadline)                           the next response, HttpReply
//   wait_closed(deadline), unread()                 until EOF or reset, and what came
//
// Non-blocking; every wait is a poll bounded by the caller's deadline.
// Thread contract: one thread per RawHttp.

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "support/deadline.h"

namespace flux::itest {

// One HTTP/1.1 response.
struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  // The value of header `name` (lower case), "" when absent.
  std::string header(const std::string& name) const;
};

// Cuts one response off the front of `in`; nullopt while it is incomplete.
// `head_only`: the response to a HEAD request (a Content-Length, no body).
std::optional<HttpReply> take_reply(std::string& in, bool head_only);

// The status of a response's first line ("HTTP/1.1 413 ..." -> 413); 0 if
// `response` does not start with a status line.
int http_status(std::string_view response);

class RawHttp {
 public:
  RawHttp() = default;
  RawHttp(RawHttp&& other) noexcept;
  RawHttp& operator=(RawHttp&&) = delete;
  ~RawHttp() { close(); }

  // connect() in one step, or its two halves, so that many connects can be
  // in flight at once.
  ::testing::AssertionResult connect(uint16_t port, Deadline deadline);
  ::testing::AssertionResult start_connect(uint16_t port);
  ::testing::AssertionResult finish_connect(Deadline deadline);

  // Sends everything; false if the peer closed or the deadline passed first.
  bool send(std::string_view bytes, Deadline deadline);

  // What the kernel takes now, without waiting.
  size_t send_some(std::string_view bytes);

  // The next response (its head only, with `head_only`), or nullopt if it is
  // not complete by the deadline or a close.
  std::optional<HttpReply> read_reply(Deadline deadline, bool head_only = false);

  // Reads until EOF or reset: true if that came before the deadline.
  bool wait_closed(Deadline deadline);

  // Reads what is there now; notes EOF or reset.
  void read_available();

  bool closed() const { return closed_; }            // EOF or reset seen
  bool broken() const { return broken_; }            // a send failed
  const std::string& unread() const { return in_; }  // received, not taken as a reply
  int fd() const { return fd_; }
  void close();

 private:
  bool fill(Deadline deadline);
  bool wait(short events, Deadline deadline);

  int fd_ = -1;
  std::string in_;
  bool closed_ = false;
  bool broken_ = false;
};

}  // namespace flux::itest
