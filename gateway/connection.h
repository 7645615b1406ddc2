#pragma once
// Connection: one client socket and its protocol state machine.
//
//   CONNECTING --start()--> HANDSHAKE --hello--> READY
//   (with --proxy-protocol, HANDSHAKE first takes the PROXY v2 header:
//    missing, malformed, oversized or late, the connection is closed
//    without a reply and counted by reason)
//        HANDSHAKE/READY --error, timeout, BYE, EOF, shutdown--> CLOSING
//        CLOSING --output flushed + peer EOF, or linger--> CLOSED
//   (a reset or write failure goes straight to CLOSED)
//
// Input: the connection borrows a pooled block only while it reads; frames
// are parsed in place and each echo points at the bytes it was read into.
// A block with no partial frame left is handed back, so an idle connection
// holds no buffer memory at all.
//
// Output: frames queue in an OutQueue and are written with one sendmsg
// for many frames, right after the reads of a wakeup; EV_WRITE is armed only
// while the kernel refuses more.
//
// CLOSING flushes what is queued, then half-closes (shutdown SHUT_WR) and
// discards input until the peer's EOF or the linger deadline, then closes:
// closing with unread input would send an RST that can destroy the very
// error message the client should read.
//
// With a session store (--session-store redis://, session_store.h) an echo
// is written only once the store has its frame: the echoes of one read
// (and whatever is queued after them) are held in the OutQueue, and the
// frames go to the store in one command; its answer releases them.
//
// The code is in four units: connection.cc (the data path: read, parse,
// echo, write, back-pressure), connection_handshake.cc (PROXY header,
// HELLO, RESUME, hand-off between reactors, session events),
// connection_store.cc (the session store's answers) and
// connection_closing.cc (deadlines, CLOSING, the close).
//
// Thread contract: reactor thread only; created and destroyed by the Reactor.

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/fd.h"
#include "gateway/connection_handoff.h"
#include "gateway/libevent_ptr.h"
#include "gateway/protocol.h"
#include "gateway/proxy_header.h"
#include "gateway/reactor_context.h"
#include "gateway/session_holder.h"
#include "gateway/session_table.h"
#include "gateway/timer.h"

namespace flux {

class Connection final : public SessionHolder, public StoreWaiter {
 public:
  Connection(ReactorContext& context, ConnectionOwner& owner, Fd fd, uint64_t id,
             const sockaddr_storage& peer);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // CONNECTING -> HANDSHAKE: registers for reads, arms the handshake timer.
  void start();
  // Server shutdown: FLUX_ERROR server-shutdown, then CLOSING.
  void shut_down_for_server_exit();
  // SessionHolder: its session was resumed by another connection (or
  // discarded after a replay gap): FLUX_ERROR session-taken-over, CLOSING.
  void on_session_taken_over() override;
  // StoreWaiter (connection_store.cc).
  void on_store_persisted(uint64_t release_to) override;
  void on_store_lost() override;
  void on_store_failed() override;
  void on_store_resumed(const StoreResume& answer) override;
  // The reactor's queued output is back under its share of
  // --max-pending-total: a connection paused by it reads again.
  void on_output_budget_relieved() noexcept;
  bool paused_by_output_budget() const noexcept { return paused_by_budget_; }
  // HANDSHAKE on this reactor for a connection another reactor handed over
  // (connection_handoff.h): its FLUX_RESUME is answered here, then the
  // input that followed it is processed.
  void start_handed_over(ConnectionHandoff handoff);
  // The same during server shutdown: no answer but FLUX_ERROR server-shutdown.
  void start_handed_over_into_shutdown(ConnectionHandoff handoff);
  // True once this connection has left for another reactor: the owner
  // forgets it without counting a close (the socket lives on over there).
  bool handed_off() const noexcept { return handed_off_; }

  uint64_t id() const noexcept { return id_; }
  ConnState state() const noexcept { return state_; }
  const sockaddr_storage& peer() const noexcept { return peer_; }
  uint64_t pending_bytes() const noexcept { return out_.pending_bytes(); }
  uint64_t created_ns() const noexcept { return created_ns_; }

  // Per-connection traffic, for the /connections listing.
  using Traffic = ConnectionTraffic;
  const Traffic& traffic() const noexcept { return traffic_; }
  // For /connections (reactor thread, when asked): seconds paused by
  // back-pressure so far (the current pause included), the socket, the
  // session's seq (0 without a session).
  uint64_t paused_ns(uint64_t now_ns) const noexcept {
    return traffic_.paused_ns + (paused_since_ns_ != 0 ? now_ns - paused_since_ns_ : 0);
  }
  int fd() const noexcept { return fd_.get(); }
  uint64_t session_seq() const noexcept;

  // The owner's slot index, kept here so removal is O(1).
  size_t slot = 0;

 private:
  static void on_readable_cb(evutil_socket_t, short, void* self);
  static void on_writable_cb(evutil_socket_t, short, void* self);
  static void on_timer_cb(evutil_socket_t, short, void* self);
  static void on_write_timeout_cb(evutil_socket_t, short, void* self);
  void on_readable();
  void on_writable() { flush(); }
  void on_timer();
  void on_write_timeout();

  // Input
  void make_read_room();
  // Takes every whole frame; returns true if there was at least one.
  bool process_input(uint64_t read_at_ns);
  // Echoes the data frames at the front of the input as one run (one
  // replay copy, one queue entry). `took`: a run was taken; `whole_next`: a
  // whole frame (or a too-large header) follows, for the frame-by-frame path.
  struct RunTaken {
    bool took;
    bool whole_next;
  };
  RunTaken take_data_run(uint64_t read_at_ns);
  void handle_frame(std::string_view payload, uint64_t read_at_ns);
  // --proxy-protocol: consumes the header; false if the connection is refused.
  bool take_proxy_header();
  void refuse_proxy_header(ProxyHeaderError error);
  void handle_handshake(std::string_view payload);
  // `may_hand_off` is false for the resume a connection was handed in with:
  // the reactor the directory named answers it, whatever it finds.
  void handle_resume(std::string_view id, uint64_t last_seq, bool may_hand_off = true);
  void hand_off_when_flushed(unsigned owner, std::string_view id, uint64_t last_seq);
  // Input waits while the connection leaves, or while the store answers a resume.
  bool input_on_hold() const noexcept {
    return pending_handoff_ || pending_store_resume_ || takeover_pending_;
  }
  void hand_off_now();
  void become_ready(Session& session);
  void resume_into(Session& session, uint64_t last_seq);
  void refuse_resume(ResumeResult result);
  void handle_ready(std::string_view payload, uint64_t read_at_ns);
  // Session store (connection_store.cc).
  void hello();
  void handle_bye();
  void resume_from_store(std::string_view id, uint64_t last_seq);
  void hold_for_store(std::string_view echoed) noexcept;
  void send_store_batch();
  void after_store_answer();
  void drop_unstored_echoes() noexcept;
  void tell_taken_over();
  void discard_input();
  void on_peer_eof();

  // Output
  void queue(std::string_view text, BlockRef tail_owner = {}, std::string_view tail = {},
             uint64_t read_at_ns = 0);
  void queue_run(BlockRef owner, std::string_view frames, uint32_t count, uint64_t read_at_ns);
  void queue_error(ErrorCode code);
  void flush();
  void note_pushed(uint64_t before) noexcept;
  void note_queue_change(uint64_t before) noexcept;
  bool over_pending_bound() const noexcept;
  bool should_pause_reading() const noexcept;
  void pause_reading();
  void track_write_progress(bool blocked, bool progressed) noexcept;

  // Lifecycle
  void set_state(ConnState next) noexcept;
  void begin_closing(CloseReason reason, std::optional<ErrorCode> error);
  void finish_closing();
  void close_now(CloseReason reason);
  void set_reading(bool on) noexcept;
  void requeue_read() noexcept;
  void stop_io() noexcept;
  void leave_output_budget_pause() noexcept;
  void end_pause_if_reading_may_resume() noexcept;
  void set_writing(bool on) noexcept;

  ReactorContext& ctx_;
  ConnectionOwner& owner_;
  Fd fd_;
  const uint64_t id_;
  sockaddr_storage peer_;  // the socket's peer, or the client a PROXY header names
  ConnState state_ = ConnState::kConnecting;
  CloseReason close_reason_ = CloseReason::kEof;

  EventPtr read_event_;
  EventPtr write_event_;
  Timer timer_;        // handshake, idle or linger deadline, by state
  Timer write_timer_;  // armed while output is blocked: --write-timeout
  bool reading_ = false;
  bool writing_ = false;
  bool paused_by_backpressure_ = false;  // own queue over --max-pending
  bool paused_by_budget_ = false;        // reactor over its --max-pending-total share
  bool write_side_shut_ = false;
  bool peer_eof_ = false;
  bool handed_in_ = false;              // arrived by hand-off (no PROXY header follows)
  bool awaiting_proxy_header_ = false;  // --proxy-protocol: nothing is Flux before it
  bool handed_off_ = false;             // left for another reactor (state kClosed, not counted)

  // A resume whose session another reactor owns: input is held, and the
  // connection leaves once what it owes the client is flushed.
  struct PendingHandoff {
    unsigned owner = 0;
    SessionId session_id{};
    uint64_t last_seq = 0;
  };
  std::optional<PendingHandoff> pending_handoff_;

  // Unparsed input lives in in_block_[in_begin_, in_end_).
  BlockRef in_block_;
  size_t in_begin_ = 0;
  size_t in_end_ = 0;

  // Session store: data frames of this read not yet sent to the store, the
  // requests awaiting an answer, and a resume the store is deciding.
  uint64_t unstored_frames_ = 0;
  unsigned store_requests_ = 0;
  bool takeover_pending_ = false;  // taken over: session-taken-over once the store has answered
  bool store_lost_ = false;        // the store refused a write: the session is gone from here
  bool told_taken_over_ = false;
  struct PendingStoreResume {
    SessionId session_id{};
    uint64_t last_seq = 0;
    StoreToken token;
  };
  std::optional<PendingStoreResume> pending_store_resume_;

  OutQueue out_;
  Session* session_ = nullptr;    // from READY until the session detaches or ends
  uint64_t created_ns_;           // when the client connected (kept across a hand-off)
  uint64_t paused_since_ns_ = 0;  // reading paused by back-pressure since (0: not paused)
  Traffic traffic_;
};

}  // namespace flux
