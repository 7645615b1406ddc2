// dashboard/embedded_files.h: the embedded page is exactly the files on disk,
// under the paths and content types the metrics server serves, and every
// relative URL the page loads is one of them.

#include "dashboard/embedded_files.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace flux {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const EmbeddedFile* find(std::string_view path) {
  for (const EmbeddedFile& f : dashboard_files()) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

struct Expected {
  const char* path;
  const char* content_type;
  const char* source;  // relative to the source tree
};

constexpr Expected kExpected[] = {
    {"/", "text/html; charset=utf-8", "dashboard/index.html"},
    {"/format.js", "text/javascript; charset=utf-8", "dashboard/format.js"},
    {"/charts.js", "text/javascript; charset=utf-8", "dashboard/charts.js"},
    {"/app.js", "text/javascript; charset=utf-8", "dashboard/app.js"},
    {"/style.css", "text/css; charset=utf-8", "dashboard/style.css"},
    {"/uPlot.iife.min.js", "text/javascript; charset=utf-8",
     "dashboard/node_modules/uplot/dist/uPlot.iife.min.js"},
    {"/uPlot.min.css", "text/css; charset=utf-8",
     "dashboard/node_modules/uplot/dist/uPlot.min.css"},
};

TEST(EmbeddedFiles, ExactlyTheSevenPathsOnce) {
  std::set<std::string_view> paths;
  for (const EmbeddedFile& f : dashboard_files()) {
    EXPECT_TRUE(paths.insert(f.path).second) << "duplicate path " << f.path;
  }
  EXPECT_EQ(paths.size(), std::size(kExpected));
  for (const Expected& e : kExpected) EXPECT_TRUE(paths.count(e.path)) << "missing " << e.path;
}

TEST(EmbeddedFiles, BodiesAreTheSourceFilesByteForByte) {
  for (const Expected& e : kExpected) {
    const EmbeddedFile* f = find(e.path);
    ASSERT_NE(f, nullptr) << e.path;
    EXPECT_EQ(f->content_type, e.content_type) << e.path;
    const std::string on_disk = read_file(std::string(FLUX_SOURCE_DIR "/") + e.source);
    ASSERT_FALSE(on_disk.empty()) << e.source;
    // Compared as a size plus a flag rather than EXPECT_EQ on 50 KB strings.
    EXPECT_EQ(f->body.size(), on_disk.size()) << e.path;
    EXPECT_TRUE(f->body == on_disk) << e.path << " differs from " << e.source;
  }
}

TEST(EmbeddedFiles, IndexIsHtmlAndCallsTheApp) {
  const EmbeddedFile* index = find("/");
  ASSERT_NE(index, nullptr);
  EXPECT_TRUE(index->body.starts_with("<!doctype html>"));
  EXPECT_NE(index->body.find("src=\"app.js\""), std::string_view::npos);
}

// A file the page loads but the binary lacks would be a 404 only in the
// browser: check every local src/href of index.html is embedded, and that
// nothing is fetched from another host (no CDN).
TEST(EmbeddedFiles, EveryUrlInIndexIsEmbeddedAndLocal) {
  const EmbeddedFile* index = find("/");
  ASSERT_NE(index, nullptr);
  const std::string html(index->body);
  const std::regex attr(R"re((?:src|href)="([^"]*)")re");
  int urls = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), attr); it != std::sregex_iterator();
       ++it) {
    const std::string url = (*it)[1];
    ++urls;
    EXPECT_EQ(url.find("//"), std::string::npos) << "absolute URL in index.html: " << url;
    EXPECT_NE(url.front(), '/') << "use a relative URL (works under a path prefix): " << url;
    EXPECT_NE(find("/" + url), nullptr) << "index.html loads " << url << " which is not embedded";
  }
  EXPECT_EQ(urls, 6);  // uPlot.min.css, style.css, uPlot.iife.min.js, format.js, charts.js, app.js
}

}  // namespace
}  // namespace flux
