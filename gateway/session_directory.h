#pragma once
// SessionDirectory: which reactor owns each session, for a resume that
// lands on another reactor than the one its session lives on.
//
// The ownership rule: a session is owned by the reactor that created it,
// from its creation to its end, and never moves (a resume elsewhere moves
// the connection instead: connection_handoff.h). An id is claimed once, by
// one reactor, and released only by that reactor when the session is freed.
//
// Written when a session is created or freed, read when a resume does not
// find its session locally: handshake paths only, never per frame, so a
// mutex is the simple and sufficient tool here.
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
  // False (and nothing changed) if the id is already claimed by anyone.
  [[nodiscard]] bool claim(std::string_view id, unsigned reactor);
  // Forgets the entry only if `reactor` owns it.
  void release(std::string_view id, unsigned reactor);
  std::optional<unsigned> owner(std::string_view id) const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, unsigned> owners_;
};

}  // namespace flux
