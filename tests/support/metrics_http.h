#pragma once

// MetricsHttp: the gateway's metrics port through cpp-httplib, as a
// well-behaved HTTP client sees it. /metrics comes back parsed
// (exposition_parser.h), /stats and /connections as JSON.
//
// Every read returns nullopt when the endpoint does not answer 200 in time
// or the body does not parse, with `why` (when given) saying which; it never
// fails the test itself, so that polling loops can retry. A test that wants
// an unreadable endpoint to be a failure says so: ASSERT_TRUE(e) << why.
// Raw bytes no well-behaved client would send: raw_http.h.
//
// Thread contract: one thread per MetricsHttp (cpp-httplib's Client is not
// shared across threads); each request is a new connection.

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "support/exposition_parser.h"

namespace flux::itest {

class MetricsHttp {
 public:
  // 127.0.0.1:`port`; connecting, reading and writing each bounded by `timeout`.
  explicit MetricsHttp(uint16_t port, std::chrono::seconds timeout = std::chrono::seconds(5));

  // The plain requests, whatever they answer.
  httplib::Result get(const std::string& path);
  httplib::Result post(const std::string& path);  // a one-byte text/plain body

  // GET `path`, which must answer 200: its body.
  std::optional<std::string> body(const std::string& path, std::string* why = nullptr);

  // GET /metrics, parsed without errors.
  std::optional<exposition::Exposition> scrape(std::string* why = nullptr);

  // The sum of a family's samples over every series matching `labels` (all
  // reactors, any label not named), from a fresh scrape; nullopt when the
  // scrape fails or no series matches.
  std::optional<double> sum(const std::string& name, const exposition::Labels& labels = {});

  // GET `path` (e.g. "/stats", "/connections?limit=100"), parsed as JSON.
  std::optional<nlohmann::json> get_json(const std::string& path, std::string* why = nullptr);

 private:
  httplib::Client client_;
};

}  // namespace flux::itest
