#include "metrics/thread_names.h"

#include <dirent.h>
#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace flux {

void name_this_thread(const std::string& name) noexcept {
  constexpr size_t kMaxName = 15;  // TASK_COMM_LEN - 1
  pthread_setname_np(pthread_self(), name.substr(0, kMaxName).c_str());
}

std::vector<ThreadInfo> list_threads() {
  std::vector<ThreadInfo> threads;
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return threads;
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const unsigned long long tid = strtoull(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;  // "." and ".."
    std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
    std::string name;
    if (!std::getline(comm, name)) continue;  // the thread ended meanwhile
    threads.push_back({tid, name});
  }
  closedir(dir);
  std::sort(threads.begin(), threads.end(),
            [](const ThreadInfo& a, const ThreadInfo& b) { return a.tid < b.tid; });
  return threads;
}

}  // namespace flux
