#pragma once
// ConnectionHandoff: a client connection on its way to the reactor that owns
// the session it asked to resume (docs/protocol.md, "Several reactors").
//
// Sessions never move between reactors: each is served, from creation to
// its end, by the reactor that created it. A FLUX_RESUME that lands on
// another reactor hands its *connection* to the owner instead, so every
// resume of one session runs on one thread, in arrival order there, and
// is answered exactly as a single reactor would answer it under any
// interleaving (no session is ever in flight, no id is ever held twice).
//
//   reactor B: FLUX_RESUME <sid> n, sid owned by A
//     stop reading, flush what is owed, then package:
//       socket + peer + traffic so far + unparsed input behind the RESUME
//     ──post()──> reactor A: a Connection takes the socket, handles the
//                            RESUME locally, then the input behind it
//
// What travels is owned (the Fd closes itself if the message is never
// delivered) and copied (input bytes: pools are per reactor).

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "common/fd.h"
#include "gateway/session_id.h"

namespace flux {

// Per-connection traffic, for the /connections listing; it travels with
// the connection.
struct ConnectionTraffic {
  uint64_t frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t last_frame_ns = 0;  // when the last whole frame was read (0: none yet)
  uint64_t paused_ns = 0;      // reading paused by back-pressure, ended pauses
};

struct ConnectionHandoff {
  Fd fd;
  sockaddr_storage peer{};
  uint64_t created_ns = 0;
  ConnectionTraffic traffic;
  SessionId session_id{};
  uint64_t last_seq = 0;
  std::string unparsed_input;  // bytes read behind the FLUX_RESUME frame
};

// Reaches the reactor that owns a session. Implemented by the Reactor (by
// message to its peer); a reactor on its own never hands off.
class ConnectionRouter {
 public:
  virtual void hand_off(unsigned owner, ConnectionHandoff handoff) = 0;

 protected:
  ~ConnectionRouter() = default;
};

}  // namespace flux
