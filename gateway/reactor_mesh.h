#pragma once
// ReactorMesh: what the reactors of one process share, and how they reach
// each other. A reactor on its own has a mesh of one.
//
//   directory  which reactor owns each session (claimed at creation)
//   admitted   open connections of all reactors, against --max-connections
//   draining   how many members have begun their shutdown
//   members    every reactor, by index (set before any thread starts)
//   store      makes each member's session store (--session-store); empty:
//              the Redis store. The fuzzer puts an in-process stub here.
//
// Reactors meet only here and through Reactor::post(); nothing on the data
// path touches the mesh.
//
// Thread contract: members is written before the reactors' threads start
// and only read afterwards; the rest is thread-safe.

#include <atomic>
#include <cstdint>
#include <vector>

#include "gateway/session_directory.h"
#include "gateway/session_store.h"

namespace flux {

class Reactor;

struct ReactorMesh {
  SessionDirectory directory;
  std::atomic<uint64_t> admitted{0};
  std::atomic<unsigned> draining{0};
  std::vector<Reactor*> members;
  SessionStoreFactory store;

  // True once every member has begun its shutdown: from then on no member
  // hands a connection to another (a closing connection never moves).
  bool all_draining() const noexcept { return draining.load() >= members.size(); }
};

}  // namespace flux
