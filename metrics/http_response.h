#pragma once
// An HTTP/1.1 response of the metrics port, and its bytes on the wire.
//
// Every response carries Content-Type and Content-Length, then either
// `Connection: close` or keep-alive with the request deadline as its
// timeout; a HEAD request gets the head alone. Handlers build responses on
// their worker threads; HttpFront serializes them on its IO thread.
//
// Thread contract: plain values and pure functions, any thread.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace flux {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones
};

// The standard reason phrase of the statuses the port uses.
const char* http_reason_phrase(int status);

// Status line, headers and (unless head_only) body.
std::string serialize_response(const HttpResponse& response, bool head_only, bool close,
                               std::chrono::milliseconds keep_alive);

// A text/plain response.
HttpResponse text_response(int status, std::string body);

}  // namespace flux
