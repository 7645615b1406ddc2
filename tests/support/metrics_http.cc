#include "support/metrics_http.h"

namespace flux::itest {

MetricsHttp::MetricsHttp(uint16_t port, std::chrono::seconds timeout) : client_("127.0.0.1", port) {
  client_.set_connection_timeout(timeout);
  client_.set_read_timeout(timeout);
  client_.set_write_timeout(timeout);
}

httplib::Result MetricsHttp::get(const std::string& path) {
  return client_.Get(path.c_str());
}

httplib::Result MetricsHttp::post(const std::string& path) {
  return client_.Post(path.c_str(), "x", "text/plain");
}

std::optional<std::string> MetricsHttp::body(const std::string& path, std::string* why) {
  httplib::Result res = get(path);
  if (!res) {
    if (why) *why = "GET " + path + ": " + httplib::to_string(res.error());
    return std::nullopt;
  }
  if (res->status != 200) {
    if (why) *why = "GET " + path + ": status " + std::to_string(res->status) + "\n" + res->body;
    return std::nullopt;
  }
  return res->body;
}

std::optional<exposition::Exposition> MetricsHttp::scrape(std::string* why) {
  auto text = body("/metrics", why);
  if (!text) return std::nullopt;
  exposition::Exposition e = exposition::parse(*text);
  if (!e.errors.empty()) {
    if (why) *why = "/metrics does not parse: " + e.errors.front();
    return std::nullopt;
  }
  return e;
}

std::optional<double> MetricsHttp::sum(const std::string& name, const exposition::Labels& labels) {
  auto e = scrape();
  if (!e) return std::nullopt;
  return e->sum(name, labels);
}

std::optional<nlohmann::json> MetricsHttp::get_json(const std::string& path, std::string* why) {
  auto text = body(path, why);
  if (!text) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    if (why) *why = path + " is not JSON: " + *text;
    return std::nullopt;
  }
  return j;
}

}  // namespace flux::itest
