#pragma once
// The dashboard's files, embedded in the binary at build time
// (dashboard/CMakeLists.txt runs dashboard/embed.cmake), so the page works on
// a machine with no network and no file beside the binary.
//
//   path                 source                                  content_type
//   /                    dashboard/index.html                    text/html; charset=utf-8
//   /app.js              dashboard/app.js                        text/javascript; charset=utf-8
//   /style.css           dashboard/style.css                     text/css; charset=utf-8
//   /uPlot.iife.min.js   node_modules/uplot/dist/ (npm, pinned)  text/javascript; charset=utf-8
//   /uPlot.min.css       node_modules/uplot/dist/ (npm, pinned)  text/css; charset=utf-8
//
// The page refers to the others by relative URL, so it also works behind a
// reverse proxy that mounts the metrics port under a prefix.

#include <span>
#include <string_view>

namespace flux {

struct EmbeddedFile {
  std::string_view path;          // URL path: "/", "/app.js", ...
  std::string_view content_type;  // e.g. "text/html; charset=utf-8"
  std::string_view body;          // the file's bytes (not NUL-terminated by contract)
};

// Every embedded file, in the order above. Any thread: the data is constant
// and lives for the whole program.
std::span<const EmbeddedFile> dashboard_files();

}  // namespace flux
