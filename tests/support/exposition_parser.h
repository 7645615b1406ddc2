#pragma once
// A small reader of the Prometheus text exposition format (0.0.4), for tests:
// enough to read back what prometheus-cpp's TextSerializer writes (and what
// the gateway serves on /metrics) and check it by invariants.
//
//   # HELP <family> <help text>
//   # TYPE <family> counter|gauge|histogram|summary|untyped
//   <sample name>{<label>="<value>",...} <value> [<timestamp ms>]
//
// A sample belongs to the family of the closest # TYPE line above it: its
// name is the family name, or for a histogram <family>_bucket / _sum / _count.
// Anything else (a sample without a family, a malformed line, a series seen
// twice) is reported in Exposition::errors rather than guessed around.
//
// Header-only; shared by tests/metrics (unit) and the integration tests
// (through metrics_http.h and metrics_scrape.h).

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flux::exposition {

using Labels = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Family {
  std::string name, help, type;
  std::vector<Sample> samples;
};

// "name{a="1",b="2"}": one canonical spelling of a series, for messages and
// duplicate detection (labels sorted by name).
inline std::string series_key(const std::string& name, const Labels& labels) {
  std::string key = name + "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    key += (first ? "" : ",") + k + "=\"" + v + "\"";
    first = false;
  }
  return key + "}";
}

struct Exposition {
  std::vector<Family> families;
  std::vector<std::string> errors;  // empty for a well-formed exposition

  const Family* family(std::string_view name) const {
    for (const Family& f : families)
      if (f.name == name) return &f;
    return nullptr;
  }

  // The value of the one sample with exactly this name and label set.
  std::optional<double> value(std::string_view name, const Labels& labels = {}) const {
    for (const Family& f : families)
      for (const Sample& s : f.samples)
        if (s.name == name && s.labels == labels) return s.value;
    return std::nullopt;
  }

  // Every sample named `name` whose labels include all of `subset`.
  std::vector<const Sample*> samples(std::string_view name, const Labels& subset = {}) const {
    std::vector<const Sample*> out;
    for (const Family& f : families)
      for (const Sample& s : f.samples) {
        if (s.name != name) continue;
        bool match = true;
        for (const auto& [k, v] : subset) {
          auto it = s.labels.find(k);
          if (it == s.labels.end() || it->second != v) match = false;
        }
        if (match) out.push_back(&s);
      }
    return out;
  }

  // Sum over samples(name, subset); nullopt when there is none.
  std::optional<double> sum(std::string_view name, const Labels& subset = {}) const {
    auto found = samples(name, subset);
    if (found.empty()) return std::nullopt;
    double total = 0;
    for (const Sample* s : found) total += s->value;
    return total;
  }
};

namespace detail {

inline bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
inline bool is_name_char(char c) {
  return is_name_start(c) || std::isdigit(static_cast<unsigned char>(c));
}

// Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]*
inline bool valid_metric_name(std::string_view name) {
  if (name.empty() || !is_name_start(name[0])) return false;
  for (char c : name)
    if (!is_name_char(c)) return false;
  return true;
}

// Label name: [a-zA-Z_][a-zA-Z0-9_]*, and not reserved (__*).
inline bool valid_label_name(std::string_view name) {
  if (name.empty() || name[0] == ':' || !is_name_start(name[0]) || name.starts_with("__"))
    return false;
  for (char c : name)
    if (c == ':' || !is_name_char(c)) return false;
  return true;
}

inline std::optional<double> parse_value(std::string_view text) {
  if (text == "+Inf") return HUGE_VAL;
  if (text == "-Inf") return -HUGE_VAL;
  if (text == "NaN" || text == "Nan") return std::nan("");
  if (text.empty()) return std::nullopt;
  std::string copy(text);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || errno == ERANGE) return std::nullopt;
  return v;
}

inline bool failed(std::string& error, std::string why) {
  error = std::move(why);
  return false;
}

// Parses `{a="x",b="y"}` starting at line[pos] == '{'; pos ends after '}'.
inline bool parse_labels(const std::string& line, size_t& pos, Labels& labels, std::string& error) {
  ++pos;  // '{'
  while (pos < line.size() && line[pos] != '}') {
    size_t eq = line.find('=', pos);
    if (eq == std::string::npos) return failed(error, "label without '='");
    std::string name = line.substr(pos, eq - pos);
    if (!valid_label_name(name)) return failed(error, "bad label name '" + name + "'");
    pos = eq + 1;
    if (pos >= line.size() || line[pos] != '"') return failed(error, "label value not quoted");
    ++pos;
    std::string value;
    for (;; ++pos) {
      if (pos >= line.size()) return failed(error, "unterminated label value");
      char c = line[pos];
      if (c == '"') break;
      if (c == '\\') {
        if (++pos >= line.size()) return failed(error, "dangling escape");
        char e = line[pos];
        if (e == 'n')
          value += '\n';
        else if (e == '\\' || e == '"')
          value += e;
        else
          return failed(error, std::string("bad escape \\") + e);
      } else {
        value += c;
      }
    }
    ++pos;  // closing quote
    if (!labels.emplace(name, value).second) return failed(error, "label '" + name + "' repeated");
    if (pos < line.size() && line[pos] == ',') ++pos;
  }
  if (pos >= line.size()) return failed(error, "unterminated label set");
  ++pos;  // '}'
  return true;
}

inline bool belongs_to(const std::string& sample, const Family& family) {
  if (sample == family.name) return family.type != "histogram";
  if (family.type == "histogram")
    return sample == family.name + "_bucket" || sample == family.name + "_sum" ||
           sample == family.name + "_count";
  if (family.type == "summary")
    return sample == family.name + "_sum" || sample == family.name + "_count";
  return false;
}

}  // namespace detail

inline Exposition parse(const std::string& text) {
  Exposition out;
  std::set<std::string> seen_series;
  std::map<std::string, std::string> help;  // HELP may precede TYPE
  std::istringstream in(text);
  std::string line;
  size_t number = 0;
  auto fail = [&](const std::string& why) {
    out.errors.push_back("line " + std::to_string(number) + ": " + why + ": " + line);
  };
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      const bool is_type = line[2] == 'T';
      std::string rest = line.substr(7);
      size_t space = rest.find(' ');
      std::string name = rest.substr(0, space);
      std::string arg = space == std::string::npos ? "" : rest.substr(space + 1);
      if (!detail::valid_metric_name(name)) fail("bad family name");
      if (!is_type) {
        help[name] = arg;
        continue;
      }
      static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                   "untyped"};
      if (!kTypes.count(arg)) fail("unknown type");
      if (out.family(name)) fail("family declared twice");
      out.families.push_back({name, help.count(name) ? help[name] : "", arg, {}});
      continue;
    }
    if (line[0] == '#') continue;  // a comment
    Sample sample;
    size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') ++pos;
    sample.name = line.substr(0, pos);
    if (!detail::valid_metric_name(sample.name)) {
      fail("bad sample name");
      continue;
    }
    std::string error;
    if (pos < line.size() && line[pos] == '{' &&
        !detail::parse_labels(line, pos, sample.labels, error)) {
      fail(error);
      continue;
    }
    if (pos >= line.size() || line[pos] != ' ') {
      fail("no value");
      continue;
    }
    std::string rest = line.substr(pos + 1);
    std::string value_text = rest.substr(0, rest.find(' '));  // a timestamp may follow
    auto value = detail::parse_value(value_text);
    if (!value) {
      fail("bad value '" + value_text + "'");
      continue;
    }
    sample.value = *value;
    if (out.families.empty() || !detail::belongs_to(sample.name, out.families.back())) {
      fail("sample outside its family's # TYPE block");
      continue;
    }
    if (!seen_series.insert(series_key(sample.name, sample.labels)).second) fail("series repeated");
    out.families.back().samples.push_back(std::move(sample));
  }
  return out;
}

}  // namespace flux::exposition
