#pragma once
// Thread names, so that `top -H`, `ps -L`, perf and gdb tell the threads
// apart: flux-reactor-N, flux-sampler, flux-http-io, flux-http-N (the main
// thread keeps the program's name, flux-gateway).
//
// Linux allows 15 characters: a longer name is cut (flux-reactor-100
// becomes flux-reactor-10; its tid still tells it apart in /stats).
//
// Thread contract: name_this_thread() on the thread being named;
// list_threads() from any thread (it reads /proc/self/task afresh).

#include <cstdint>
#include <string>
#include <vector>

namespace flux {

void name_this_thread(const std::string& name) noexcept;

struct ThreadInfo {
  uint64_t tid = 0;
  std::string name;
};

// Every thread of this process, by tid.
std::vector<ThreadInfo> list_threads();

}  // namespace flux
