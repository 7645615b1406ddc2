#pragma once
// The dashboard's files, embedded in the binary at build time
// (dashboard/embed.cmake), so the page works on machines with no network
// and no files beside the binary.

#include <span>
#include <string_view>

namespace flux {

struct EmbeddedFile {
  std::string_view path;          // URL path: "/", "/app.js", ...
  std::string_view content_type;  // e.g. "text/html; charset=utf-8"
  std::string_view body;
};

// Every embedded file; the storage lives for the whole program.
std::span<const EmbeddedFile> dashboard_files();

}  // namespace flux
