// The metric table (metrics/metric_table.h) against its documentation: every
// metric of the table is in the README's metric list and in docs/stats.md's
// key table (with its /stats key paired to its Prometheus name), and neither
// document names a metric the table does not have.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/metric_table.h"
#include "metrics/process_stats.h"
#include "metrics/reactor_metrics.h"

namespace flux {
namespace {

// The table as the exposition sees it: /stats key -> Prometheus name.
std::map<std::string, std::string> table_keys() {
  std::map<std::string, std::string> out;
  ReactorSnapshot{}.for_each([&](std::string_view group, const MetricDef& def, const auto&) {
    if (!def.prometheus.empty())
      out[std::string(group) + "." + def.stats_key()] = std::string(def.prometheus);
  });
#define FLUX_PROCESS_ROW(field, type, kind, name, help) out["process." #field] = name;
  FLUX_PROCESS_METRICS(FLUX_PROCESS_ROW)
#undef FLUX_PROCESS_ROW
  out["version"] = out["node"] = std::string(kBuildInfoName);
  return out;
}

std::set<std::string> table_names() {
  std::set<std::string> names;
  for (const auto& [key, name] : table_keys()) names.insert(name);
  return names;
}

std::string read_doc(const std::string& relative) {
  const auto path = std::filesystem::path(__FILE__).parent_path() / ".." / ".." / relative;
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The text of the "## <title>" section, up to the next "## ".
std::string section(const std::string& md, const std::string& title) {
  const size_t at = md.find("\n## " + title + "\n");
  EXPECT_NE(at, std::string::npos) << "no section " << title;
  if (at == std::string::npos) return {};
  const size_t end = md.find("\n## ", at + 1);
  return md.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// The cells of every table row of a section (header and rule skipped).
std::vector<std::vector<std::string>> rows(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("|") || line.starts_with("|---")) continue;
    std::vector<std::string> cells;
    std::stringstream cellwise(line.substr(1));
    for (std::string cell; std::getline(cellwise, cell, '|');) cells.push_back(cell);
    out.push_back(cells);
  }
  if (!out.empty()) out.erase(out.begin());  // the header
  return out;
}

// `code` spans of a cell, label selectors ({...}) dropped.
std::vector<std::string> code_spans(const std::string& cell) {
  std::vector<std::string> out;
  static const std::regex span("`([^`]+)`");
  for (std::sregex_iterator it(cell.begin(), cell.end(), span), end; it != end; ++it) {
    std::string name = (*it)[1];
    out.push_back(name.substr(0, name.find('{')));
  }
  return out;
}

std::string list(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += " " + n;
  return out;
}

TEST(MetricDocs, TheReadmeListsExactlyTheTablesMetrics) {
  std::set<std::string> documented;
  for (const auto& cells : rows(section(read_doc("README.md"), "Metrics")))
    for (const std::string& name : code_spans(cells.at(0))) documented.insert(name);
  const std::set<std::string> table = table_names();
  std::set<std::string> missing, extra;
  for (const auto& n : table)
    if (!documented.count(n)) missing.insert(n);
  for (const auto& n : documented)
    if (!table.count(n)) extra.insert(n);
  EXPECT_TRUE(missing.empty()) << "in metrics/metric_table.h, not in README.md:" << list(missing);
  EXPECT_TRUE(extra.empty()) << "in README.md's metric list, not in the table:" << list(extra);
}

TEST(MetricDocs, StatsDocPairsEveryKeyWithItsPrometheusName) {
  std::map<std::string, std::string> documented;
  for (const auto& cells : rows(section(read_doc("docs/stats.md"), "Keys and Prometheus series"))) {
    ASSERT_GE(cells.size(), 2u);
    const std::vector<std::string> names = code_spans(cells[1]);
    ASSERT_EQ(names.size(), 1u) << cells[1];
    for (const std::string& key : code_spans(cells[0])) documented[key] = names[0];
  }
  const std::map<std::string, std::string> table = table_keys();
  for (const auto& [key, name] : table) {
    auto it = documented.find(key);
    if (it == documented.end())
      ADD_FAILURE() << key << " (" << name << ") is in the table, not in docs/stats.md";
    else
      EXPECT_EQ(it->second, name) << "docs/stats.md pairs " << key << " with another series";
  }
  for (const auto& [key, name] : documented)
    EXPECT_TRUE(table.count(key)) << key << " is in docs/stats.md, not in the table";
}

// The table's own rules: names unique per family, help on every family's
// first row, one type per family.
TEST(MetricDocs, TheTableIsWellFormed) {
  std::map<std::string, MetricKind> kind_of;
  std::string previous;
  std::set<std::string> fields;
  ReactorSnapshot{}.for_each([&](std::string_view group, const MetricDef& def, const auto&) {
    EXPECT_TRUE(fields.insert(std::string(group) + "." + std::string(def.field)).second)
        << def.field;
    if (def.prometheus.empty()) {
      EXPECT_EQ(def.kind, MetricKind::kStamp) << def.field << ": only stamps go unexposed";
      return;
    }
    const std::string name(def.prometheus);
    const bool continues = name == previous;
    EXPECT_EQ(def.help.empty(), continues) << name << ": help on the first row of a family only";
    if (continues) {
      EXPECT_EQ(kind_of[name], def.kind) << name;
    } else {
      EXPECT_FALSE(kind_of.count(name)) << name << ": its rows are not adjacent";
    }
    kind_of[name] = def.kind;
    EXPECT_EQ(name.ends_with("_total"),
              def.kind == MetricKind::kCounter || def.kind == MetricKind::kNanoseconds)
        << name << ": counters, and only counters, end in _total";
    previous = name;
  });
}

}  // namespace
}  // namespace flux
