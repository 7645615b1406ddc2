#pragma once
// Admission: whether a freshly accepted socket may become a connection.
//
// The bound is --max-connections for the whole process: every reactor of a
// group counts its open connections in one shared atomic (the mesh's
// `admitted`), one add per accepted connection and one sub per close, never
// per frame. Past the bound the client is written FLUX_ERROR server-full and
// the socket is closed (docs/protocol.md section 5, "Admission").
//
// Thread contract: the reactor thread; the counter is shared with the
// other reactors of the group.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/fd.h"
#include "metrics/reactor_metrics.h"

namespace flux {

class Admission {
 public:
  Admission(std::atomic<uint64_t>& admitted, uint64_t max_connections, ReactorMetrics& metrics,
            std::span<std::byte> discard_scratch) noexcept
      : admitted_(admitted),
        max_connections_(max_connections),
        metrics_(metrics),
        discard_scratch_(discard_scratch) {}

  // True: `fd` counts as open until release(). False: it was refused
  // (server-full written, write side shut) and `fd` is to be dropped.
  bool admit(const Fd& fd);
  // An admitted connection has closed.
  void release() noexcept { admitted_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  void reject_server_full(const Fd& fd);

  std::atomic<uint64_t>& admitted_;
  const uint64_t max_connections_;
  ReactorMetrics& metrics_;
  std::span<std::byte> discard_scratch_;
};

}  // namespace flux
