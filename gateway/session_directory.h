#pragma once
// SessionDirectory: which reactor holds each session, for a resume that
// lands on another reactor than the one its session lives on.
//
// Written when a session is created, moved or freed, read when a resume
// does not find its session locally: handshake paths only, never per
// frame, so a mutex is the simple and sufficient tool here.
//
// Thread contract: any thread.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace flux {

class SessionDirectory {
 public:
  void assign(std::string_view id, unsigned reactor);
  // Forgets the entry only if `reactor` still owns it (a session that moved
  // on must not be erased by its former owner).
  void release(std::string_view id, unsigned reactor);
  std::optional<unsigned> owner(std::string_view id) const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, unsigned> owners_;
};

}  // namespace flux
