#include "metrics/http_request.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace flux {
namespace {

constexpr size_t kMaxMethod = 32;
constexpr size_t kMaxHeaders = 100;

bool is_tchar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

HttpParse refuse(int status, std::string reason) {
  HttpParse p;
  p.kind = HttpParse::Kind::kRefuse;
  p.status = status;
  p.reason = std::move(reason);
  return p;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX-decodes `in` ('+' as a space in a query); nullopt on a bad escape.
std::optional<std::string> decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (in[i] != '%') {
      out += in[i];
    } else {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return out;
}

// "/path?a=1&b" into the request's path and params; false on a bad escape.
bool split_target(std::string_view target, HttpRequest& request) {
  const size_t q = target.find('?');
  auto path = decode(target.substr(0, q), false);
  if (!path) return false;
  request.path = std::move(*path);
  if (q == std::string_view::npos) return true;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto key = decode(pair.substr(0, eq), true);
    auto value = decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) return false;
    request.params.emplace_back(std::move(*key), std::move(*value));
  }
  return true;
}

bool valid_target(std::string_view target) {
  return !target.empty() && target.front() == '/' &&
         std::none_of(target.begin(), target.end(), [](char c) {
           const auto u = static_cast<unsigned char>(c);
           return u <= 0x20 || u == 0x7f;
         });
}

// What the headers said, as far as this server cares.
struct HeadFacts {
  std::optional<uint64_t> content_length;
  bool expects_continue = false;
  bool connection_close = false;
  bool connection_keep_alive = false;
};

// Folds one `name: value` line into `facts`; a refusal if it cannot be served.
std::optional<HttpParse> take_header(std::string_view line, HeadFacts& facts) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || !is_token(line.substr(0, colon)))
    return refuse(400, "malformed header line");
  const std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
  if (iequals(name, "Content-Length")) {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (value.empty() || end != value.data() + value.size()) {
      if (ec == std::errc::result_out_of_range) return refuse(413, "request body too large");
      return refuse(400, "malformed Content-Length");
    }
    if (facts.content_length && *facts.content_length != n)
      return refuse(400, "conflicting Content-Length");
    facts.content_length = n;
  } else if (iequals(name, "Transfer-Encoding")) {
    return refuse(411, "a request body needs a Content-Length (at most 1024 bytes)");
  } else if (iequals(name, "Expect")) {
    if (!iequals(value, "100-continue")) return refuse(417, "unsupported Expect");
    facts.expects_continue = true;
  } else if (iequals(name, "Connection")) {
    std::string_view rest = value;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string_view option = trim(rest.substr(0, comma));
      facts.connection_close |= iequals(option, "close");
      facts.connection_keep_alive |= iequals(option, "keep-alive");
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  return std::nullopt;
}

}  // namespace

bool HttpRequest::has_param(std::string_view name) const {
  return std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
}

std::string HttpRequest::param(std::string_view name) const {
  for (const auto& [key, value] : params)
    if (key == name) return value;
  return {};
}

HttpParse parse_http_request(std::string_view in) {
  // Empty lines before a request line are ignored (RFC 9112 2.2).
  const size_t start = std::min(in.find_first_not_of("\r\n"), in.size());
  if (start > kMaxHttpHead) return refuse(400, "no request line");
  const std::string_view text = in.substr(start);

  // The method first: a refused one is answered before anything else is read.
  const size_t sp = text.find(' ');
  const std::string_view method = text.substr(0, std::min(sp, text.size()));
  if (!method.empty() && !is_token(method)) return refuse(400, "malformed request line");
  if (sp == std::string_view::npos && text.size() <= kMaxMethod) return HttpParse{};
  if (method.empty()) return refuse(400, "malformed request line");
  if (method != "GET" && method != "HEAD")
    return refuse(405, "the metrics port is read-only: GET and HEAD only");

  const size_t eol = text.find('\n');
  if (eol == std::string_view::npos)
    return text.size() > kMaxHttpHead ? refuse(414, "request line too long") : HttpParse{};
  const std::string_view line = trim(text.substr(0, eol));
  const size_t sp2 = line.rfind(' ');
  if (sp2 == std::string_view::npos || sp2 <= sp) return refuse(400, "malformed request line");
  const std::string_view target = line.substr(sp + 1, sp2 - sp - 1), version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0")
    return version.starts_with("HTTP/") ? refuse(505, "HTTP/1.1 only")
                                        : refuse(400, "malformed request line");
  if (!valid_target(target)) return refuse(400, "the request target must be a /path");

  HeadFacts facts;
  size_t pos = eol + 1, headers = 0;
  for (;;) {
    const size_t next = text.find('\n', pos);
    if (next == std::string_view::npos || next > kMaxHttpHead)
      return text.size() > kMaxHttpHead ? refuse(431, "request head too large") : HttpParse{};
    const std::string_view header = text.substr(pos, next - pos);
    pos = next + 1;
    if (header == "\r" || header.empty()) break;
    if (header.front() == ' ' || header.front() == '\t')
      return refuse(400, "folded header lines are not accepted");
    if (++headers > kMaxHeaders) return refuse(431, "too many header lines");
    if (auto refusal = take_header(header, facts)) return std::move(*refusal);
  }

  const uint64_t body = facts.content_length.value_or(0);
  if (body > kMaxHttpBody) return refuse(413, "request body too large (at most 1024 bytes)");
  if (text.size() - pos < body) {
    HttpParse more;
    more.wants_continue = facts.expects_continue;
    return more;
  }
  HttpParse done;
  done.kind = HttpParse::Kind::kRequest;
  done.consumed = start + pos + static_cast<size_t>(body);
  done.request.method = std::string(method);
  done.request.keep_alive = version == "HTTP/1.1"
                                ? !facts.connection_close
                                : facts.connection_keep_alive && !facts.connection_close;
  if (!split_target(target, done.request)) return refuse(400, "malformed %-escape in the target");
  return done;
}

}  // namespace flux
