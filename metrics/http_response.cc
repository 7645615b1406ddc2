#include "metrics/http_response.h"

#include <algorithm>

namespace flux {

const char* http_reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return status < 500 ? "Client Error" : "Server Error";
  }
}

std::string serialize_response(const HttpResponse& r, bool head_only, bool close,
                               std::chrono::milliseconds keep_alive) {
  std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + http_reason_phrase(r.status) +
                     "\r\nContent-Type: " + r.content_type +
                     "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n";
  for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
  if (close)
    head += "Connection: close\r\n\r\n";
  else
    head += "Connection: keep-alive\r\nKeep-Alive: timeout=" +
            std::to_string(std::max<long long>(1, keep_alive.count() / 1000)) + "\r\n\r\n";
  if (head_only) return head;
  std::string out;
  out.reserve(head.size() + r.body.size());
  out += head;
  out += r.body;
  return out;
}

HttpResponse text_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

}  // namespace flux
