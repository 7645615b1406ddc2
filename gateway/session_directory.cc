#include "gateway/session_directory.h"

namespace flux {

bool SessionDirectory::claim(std::string_view id, unsigned reactor) {
  std::lock_guard lock(mutex_);
  return owners_.try_emplace(std::string(id), reactor).second;
}

void SessionDirectory::release(std::string_view id, unsigned reactor) {
  std::lock_guard lock(mutex_);
  auto it = owners_.find(std::string(id));
  if (it != owners_.end() && it->second == reactor) owners_.erase(it);
}

std::optional<unsigned> SessionDirectory::owner(std::string_view id) const {
  std::lock_guard lock(mutex_);
  auto it = owners_.find(std::string(id));
  if (it == owners_.end()) return std::nullopt;
  return it->second;
}

}  // namespace flux
