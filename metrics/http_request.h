#pragma once
// HttpRequest and parse_http_request(): the metrics port's HTTP/1.1 request
// parser. Pure (no I/O, no state between calls): HttpFront hands it the bytes
// a connection has sent so far and gets one of three answers:
//
//   kNeedMore  not a whole request yet (nothing wrong so far)
//   kRefuse    answer `status` and close; the parser looked no further than
//              it had to, so a refused body is never read
//   kRequest   a complete, validated GET or HEAD of `consumed` bytes
//
//   [CRLF...] METHOD SP /path?query SP HTTP/1.x CRLF    <= kMaxHttpHead bytes,
//   (name: value CRLF)*                                 request line and
//   CRLF                                                headers together
//   [body: Content-Length bytes, at most kMaxHttpBody, then discarded]
//
// Refusals, in the order they are found:
//   400  not a request line, a header that is not `name: value`, a bad
//        Content-Length or %-escape, a target that is not /path
//   405  any method token but GET and HEAD (PROPFIND, `get`, POST...), as soon
//        as the method is known: before headers, `Expect` or a body
//   505  HTTP/2 and other versions than 1.0 and 1.1
//   414  a request line longer than kMaxHttpHead
//   431  request line + headers longer than kMaxHttpHead
//   411  Transfer-Encoding (a body must say its length)
//   417  an Expect other than 100-continue
//   413  Content-Length above kMaxHttpBody
//
// Thread contract: any thread; no shared state.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flux {

inline constexpr size_t kMaxHttpHead = 8192;  // request line + headers, bytes
inline constexpr size_t kMaxHttpBody = 1024;  // read-only: no request needs a body

struct HttpRequest {
  std::string method;                                       // "GET" or "HEAD"
  std::string path;                                         // %-decoded, without the query
  std::vector<std::pair<std::string, std::string>> params;  // decoded ('+' is a space), in order
  bool keep_alive = true;  // HTTP/1.1 without `Connection: close`, or 1.0 with keep-alive

  bool has_param(std::string_view name) const;
  // The first value of `name`; "" when absent.
  std::string param(std::string_view name) const;
};

struct HttpParse {
  enum class Kind { kNeedMore, kRefuse, kRequest };
  Kind kind = Kind::kNeedMore;
  // kNeedMore: the head is complete and announced a body with
  // `Expect: 100-continue`; the caller may send `100 Continue` once.
  bool wants_continue = false;
  int status = 0;       // kRefuse
  std::string reason;   // kRefuse: one line for the response body
  size_t consumed = 0;  // kRequest: bytes of the request, head and body
  HttpRequest request;  // kRequest
};

HttpParse parse_http_request(std::string_view in);

}  // namespace flux
