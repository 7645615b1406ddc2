#pragma once
// SessionHolder: what a session knows of the connection it is attached to.
//
// A session outlives its connections (session_table.h), so it must not
// depend on Connection: it records its holder through this narrow
// interface, and the SessionTable tells the holder when it loses the
// session to someone else. Connection implements it; tests implement it
// with a small fake.
//
// Used on session events only (create, resume, takeover), never per frame.
//
// Thread contract: the owning reactor thread only.

namespace flux {

class SessionHolder {
 public:
  // The session this holder was attached to now belongs to another
  // connection (a resume took it over), or is gone (a resume found a replay
  // gap and discarded it): the holder must forget it, tell its client
  // session-taken-over and close (docs/protocol.md, section 7).
  virtual void on_session_taken_over() = 0;

 protected:
  ~SessionHolder() = default;
};

}  // namespace flux
