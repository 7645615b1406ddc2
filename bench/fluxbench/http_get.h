#pragma once
// A minimal HTTP/1.1 client: one GET, `Connection: close`, the whole body
// read until EOF, every step bounded by one deadline. Enough to poll a
// gateway's /stats once a second; not a general client (no chunked
// encoding, no redirects, IPv4 numeric hosts only).
//
// Thread contract: free functions, any thread; blocking, bounded.

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flux::bench {

struct HttpUrl {
  in_addr_t addr = 0;  // network order
  uint16_t port = 80;
  std::string host;  // as written, for the Host header
  std::string path = "/";
};

// Parses "http://A.B.C.D[:port][/path]" ("localhost" is 127.0.0.1).
std::optional<HttpUrl> parse_http_url(std::string_view text);

struct HttpResponse {
  int status = 0;
  std::string body;
};

// GETs `url`; nullopt on any failure or if `timeout_ms` elapses first.
std::optional<HttpResponse> http_get(const HttpUrl& url, int timeout_ms);

}  // namespace flux::bench
