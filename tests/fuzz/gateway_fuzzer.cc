// gateway_fuzzer: arbitrary byte streams, cut at arbitrary points, through a
// real in-process Reactor (frame parser, connection state machine,
// sessions, replay, back-pressure), checked against an independent model of
// the protocol (docs/protocol.md).
//
//   fuzz input ──decode──> actions ──> client ends of socketpairs ──> Reactor
//                                             ^                          |
//                     model checks <──drain──-+<────── frames ───────────+
//
// Each input is one short scenario on a fresh Reactor, or on two reactors
// of one ReactorMesh (multi-reactor mode, config bit): open up to 8
// connections (serve_connected() of one end of an AF_UNIX socketpair, client i on
// reactor i mod n; the listener is never opened), queue raw bytes or well-formed frames on them,
// write the queue out in arbitrary cuts, stop and resume reading (back-pressure), half-close,
// close, reset, shut the server down. Between actions the loop turns once without blocking
// (run_once(false)) and every readable client end is drained. Timeouts are a minute: no timer fires
// inside one input.
//
// Multi-reactor mode runs both reactors on this one thread, so the
// interleavings of their cross-reactor messages (a resume handed to the
// session's owner) are chosen by the input, reproducibly: each step turns
// the reactors in an order that alternates, and the kStep op turns only the
// reactor the input names, letting one side run ahead of the other.
//
// Input format (read front to back; an exhausted input reads as zeros):
//
//   byte 0      config: max-frame, max-pending, replay bounds, budget
//   byte 1      config: max-connections, socket buffers, reactors (1 or 2),
//               --proxy-protocol (then every client opens with a PROXY v2
//               header; every third one's header is malformed, and the
//               model expects it closed without a single frame), store
//               mode (sessions in a session store: an in-process stub of
//               the Redis store, tests/fuzz/store_stub.h, that answers one
//               loop turn late, so echoes, READY and resumes wait for it;
//               the model is the same: section 8 does not depend on the store)
//   then        actions: one op byte (low nibble: op, high nibble: client),
//               followed by that op's arguments (see Op and FrameKind)
//
// tests/fuzz/make_corpus.py writes the seed corpus in this format (and
// --describe prints an input's actions); FLUX_FUZZ_TRACE=1 prints every
// action, write and checked frame while an input runs.
//
// Invariants checked (a violation aborts, so libFuzzer keeps the input):
//   - every server frame is well formed and at most max(max-frame, 64) long;
//   - every server frame answers the client's next unanswered frame as the
//     protocol says (echo identical and in order, PONG, BYE, errors with the
//     exact codes, FLUX_READY <32 lowercase hex> <seq>, FLUX_INVALID ...);
//     nothing arrives unasked, except session-taken-over (only while another
//     connection resumes that session, or after a replay-gap on it) and
//     server-shutdown (only after it);
//   - sequence numbers across connections: a resumed READY carries a seq the
//     session can have reached, is followed by exactly the missed frames, and
//     bad-seq / replay-gap / session-unknown only where they are possible;
//   - a fatal error or BYE is the last frame, and EOF follows it;
//   - once everything is written and read, every complete frame has been
//     answered (nothing is lost or stuck);
//   - reactor gauges add up: connections by state == connections held,
//     queued-bytes gauge == sum of per-connection queues, each queue within
//     max-pending plus one read's worth of replies;
//   - after every client closes: no connection left, nothing queued, no
//     attached session, and pooled bytes in use == replay memory (no block
//     leaked); ASan/UBSan/LSan watch everything else.

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "gateway/buffer_pool.h"
#include "gateway/options.h"
#include "gateway/reactor.h"
#include "tests/fuzz/store_stub.h"

namespace flux::fuzz {
namespace {

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char* format, ...) {
  va_list args;
  va_start(args, format);
  fputs("\ngateway_fuzzer: INVARIANT VIOLATED: ", stderr);
  vfprintf(stderr, format, args);
  fputs("\n", stderr);
  va_end(args);
  abort();
}

#define FUZZ_CHECK(cond, ...)       \
  do {                              \
    if (!(cond)) fail(__VA_ARGS__); \
  } while (0)

constexpr size_t kMaxClients = 8;      // connections per input, all told
constexpr size_t kMaxLiveClients = 4;  // open at once
constexpr int kMaxActions = 96;
// Loop turns before the harness gives up waiting for quiet. With 4 KiB
// socket buffers a turn may move only 8 KiB, and an input can make the
// server send ~12 MiB (1 MiB written, replies up to 3.4x, replays).
constexpr int kSettleRounds = 4096;
constexpr int kQuietRounds = 3;
constexpr size_t kMaxBytesPerInput = 1u << 20;  // written by all clients together
constexpr std::chrono::milliseconds kLongTime{60'000};

// FLUX_FUZZ_TRACE=1 prints every action, write and checked frame (to debug a finding).
bool g_trace = false;

__attribute__((format(printf, 1, 2))) void trace(const char* format, ...) {
  if (!g_trace) return;
  va_list args;
  va_start(args, format);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
}

// A printable, bounded rendering of bytes for failure messages.
std::string show(std::string_view bytes) {
  std::string out = "\"";
  for (size_t i = 0; i < bytes.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  out += "\"";
  if (bytes.size() > 80) out += " (" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

// ------------------------------------------------------------ input decoder

// Reads the fuzz input front to back; past the end every read is zero.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | u8();
    return v;
  }
  std::string bytes(size_t n) {
    const size_t take = std::min(n, size_ - std::min(pos_, size_));
    std::string out(reinterpret_cast<const char*>(data_ + pos_), take);
    pos_ += take;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

enum class Op : uint8_t {
  kOpen,           // new connection (refused with server-full past max-connections)
  kQueueRaw,       // u8 n, n bytes: queued for writing
  kQueueFrame,     // a FrameKind and its arguments: queued
  kWrite,          // u8 n: write up to n queued bytes (0 = all the socket takes)
  kToggleRead,     // stop / resume draining this client (back-pressure)
  kShutWrite,      // shutdown(SHUT_WR): the server sees EOF
  kClose,          // settle, then close
  kReset,          // settle, send a PING, close with its answer unread
  kSettle,         // turn the loop until quiet, reading everything
  kStep,           // one more loop turn (multi-reactor: of the hinted reactor only)
  kShutdown,       // Reactor::request_shutdown()
  kFrameAndWrite,  // kQueueFrame then kWrite all
  kRawAndWrite,    // kQueueRaw then kWrite all
  kCount_,
};

enum class FrameKind : uint8_t {
  kHello,
  kHello1,
  kHelloVersion,  // u8: which odd version string
  kPing,
  kPingToken,  // u8 n, n bytes
  kBye,
  kDataSmall,       // u8 n, n bytes
  kDataBig,         // u8 size choice, u8 fill
  kResumeKnown,     // u8 session, u8 seq mode, u8 k
  kResumeOther,     // u8 mode, then mode's bytes
  kUnknownControl,  // u8 n, n bytes: "FLUX_" + bytes
  kHeaderOnly,      // u32: a length header and nothing else
  kCount_,
};

// ------------------------------------------------------------------ framing

std::string header(uint32_t length) {
  std::string h(4, '\0');
  h[0] = static_cast<char>(length >> 24);
  h[1] = static_cast<char>(length >> 16);
  h[2] = static_cast<char>(length >> 8);
  h[3] = static_cast<char>(length);
  return h;
}

std::string frame(std::string_view payload) {
  return header(static_cast<uint32_t>(payload.size())) + std::string(payload);
}

uint32_t length_at(std::string_view bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

struct Cut {
  enum Kind { kNeedMore, kFrame, kTooLarge } kind;
  size_t size = 0;  // header + payload, kFrame only
  std::string_view payload;
};

// The frame starting at `at` in a stream, as the protocol cuts it.
Cut cut_frame(std::string_view bytes, size_t at, uint32_t max_frame) {
  if (bytes.size() < at + 4) return {Cut::kNeedMore, 0, {}};
  const uint32_t length = length_at(bytes, at);
  if (length > max_frame) return {Cut::kTooLarge, 0, {}};
  if (bytes.size() - at - 4 < length) return {Cut::kNeedMore, 0, {}};
  return {Cut::kFrame, 4 + size_t{length}, bytes.substr(at + 4, length)};
}

// --------------------------------------------------------- protocol model

struct Words {
  std::string_view word, rest;
  bool has_rest;
};
Words split(std::string_view text) {
  const size_t space = text.find(' ');
  if (space == std::string_view::npos) return {text, {}, false};
  return {text.substr(0, space), text.substr(space + 1), true};
}

bool is_control(std::string_view payload) {
  return payload.substr(0, 5) == "FLUX_";
}

bool is_session_id(std::string_view text) {
  return text.size() == 32 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::optional<uint64_t> decimal(std::string_view text) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

bool is_fatal_error(std::string_view payload) {
  static constexpr std::array<std::string_view, 8> kFatal = {
      "FLUX_ERROR handshake-expected",  "FLUX_ERROR handshake-timeout",
      "FLUX_ERROR unsupported-version", "FLUX_ERROR frame-too-large",
      "FLUX_ERROR idle-timeout",        "FLUX_ERROR server-full",
      "FLUX_ERROR server-shutdown",     "FLUX_ERROR session-taken-over"};
  return std::find(kFatal.begin(), kFatal.end(), payload) != kFatal.end();
}

struct Config {
  Options options;
  bool tight_replay_memory = false;  // detached sessions may be evicted
  int server_buffer_bytes = 0;       // SO_SNDBUF/SO_RCVBUF of the server end (0 = default)
  unsigned reactors = 1;             // 2: multi-reactor mode
  bool proxy_protocol = false;       // clients open with a PROXY v2 header
  bool store = false;                // sessions in the (stub) session store
};

Config decode_config(Reader& in) {
  static constexpr std::array<uint32_t, 4> kMaxFrame = {64, 1024, 16384, 65536};
  static constexpr std::array<uint64_t, 4> kMaxPending = {128, 4096, 65536, 4u << 20};
  static constexpr std::array<std::pair<uint64_t, uint64_t>, 4> kReplay = {
      {{256, 1u << 20}, {4, 1u << 20}, {8, 256}, {0, 0}}};
  static constexpr std::array<uint64_t, 4> kMaxConnections = {2, 3, 100'000, 100'000};
  const uint8_t a = in.u8(), b = in.u8();
  Config c;
  Options& o = c.options;
  o.port = 0;
  o.handshake_timeout = o.idle_timeout = o.linger = o.resume_window = kLongTime;
  o.max_frame = kMaxFrame[a & 3];
  o.max_pending = kMaxPending[(a >> 2) & 3];
  o.replay_frames = kReplay[(a >> 4) & 3].first;
  o.replay_bytes = kReplay[(a >> 4) & 3].second;
  c.tight_replay_memory = (a >> 6) & 1;
  if (c.tight_replay_memory) o.replay_memory = 16 * 1024;
  o.read_budget = (a >> 7) ? 1 : 16;
  o.max_connections = kMaxConnections[b & 3];
  c.server_buffer_bytes = (b >> 2) & 1 ? 4096 : 0;
  c.reactors = (b >> 3) & 1 ? 2 : 1;
  c.proxy_protocol = (b >> 4) & 1;
  o.proxy_protocol = c.proxy_protocol;
  c.store = (b >> 5) & 1;
  o.session_store.redis = c.store;  // the mesh's factory makes the stub, never a Redis link
  return c;
}

struct SessionModel {
  std::string id;
  uint64_t known = 0;                 // seq the model has established
  std::vector<std::string> payloads;  // payloads[i]: data frame seq i + 1
  int attached = -1;                  // client the server attached it to, per the model
  bool dead = false;                  // BYE, replay-gap, session-unknown seen
  bool maybe_gone = false;            // replay-gap while attached: kept or discarded
};

struct Client {
  int fd = -1;
  bool open = true;  // false once the harness closed its end
  bool shut_wr = false;
  bool reading = true;
  bool write_failed = false;
  std::string tx;       // queued, not yet written
  std::string sent;     // everything written, in order
  size_t answered = 0;  // offset in `sent` of the first frame not yet answered
  std::string rx;       // bytes read, not yet cut into frames
  bool eof = false;
  enum class State { kHandshake, kReady, kDone } state = State::kHandshake;
  bool refused = false;        // expects server-full
  bool proxy_refused = false;  // sent a malformed PROXY header: expects no frame, then EOF
  int session = -1;
  bool taken_over = false;                // another client resumed its session
  bool saw_takeover = false;              // it was told session-taken-over
  uint64_t budget = 0;                    // echoes still owed from before the takeover
  bool lenient = false;                   // its session was discarded under it (spec is silent)
  bool may_close = false;                 // a replay-gap hit its session: a fatal error is accepted
  std::deque<std::string> replay;         // replayed frames still expected
  size_t resume_end = std::string::npos;  // a known-session RESUME ends here (sent + tx)
  int resume_session = -1;
  uint64_t resume_floor = 0;        // the session's seq was at least this when it was queued
  bool resume_queued_live = false;  // ... and the session was not known to be gone
  bool shutdown_error_allowed = false;
};

// ------------------------------------------------------------------ harness

class Harness {
 public:
  explicit Harness(const Config& config) : config_(config) {
    if (config.store)
      mesh_.store = [this](SessionStore::Deps deps) -> std::unique_ptr<SessionStore> {
        return std::make_unique<StubStore>(std::move(deps), store_backend_);
      };
    for (unsigned i = 0; i < config.reactors; ++i) {
      reactors_.push_back(std::make_unique<Reactor>(config.options, i, mesh_));
      mesh_.members.push_back(reactors_.back().get());
    }
    clients_.reserve(kMaxClients);
  }
  ~Harness() {
    for (Client& c : clients_)
      if (c.open) ::close(c.fd);
  }

  void run(Reader& in);

 private:
  const Options& opt() const { return config_.options; }

  // Actions
  void act(Op op, size_t client_hint, Reader& in);
  void open_client();
  void queue_frame(Client& c, Reader& in);
  std::string resume_known(Client& c, Reader& in);
  std::string resume_other(Reader& in);
  void queue(Client& c, std::string bytes);
  void send_proxy_header(Client& c, bool malformed);
  bool write_some(Client& c, size_t limit);
  void shut_write(Client& c);
  void close_client(Client& c, bool reset);

  // The loop and the reading side
  void step(bool read_all, std::optional<size_t> only_reactor = std::nullopt);
  void turn_reactors(std::optional<size_t> only_reactor = std::nullopt);
  size_t connection_count() const;
  // Bytes read plus bytes written by every reactor: changes when anything moves.
  uint64_t traffic() const {
    return total([](const ReactorMetrics& m) {
      return m.traffic.bytes_in_total.get() + m.traffic.bytes_out_total.get();
    });
  }
  // A figure summed over every reactor's metrics block.
  template <typename Read>
  uint64_t total(Read read) const {
    uint64_t sum = 0;
    for (const auto& reactor : reactors_) sum += read(reactor->metrics());
    return sum;
  }
  bool settle();
  bool drain(Client& c, size_t index);
  void take_frames(Client& c, size_t index);
  void check_reactor() const;

  // The model
  void on_frame(Client& c, size_t index, std::string_view out);
  void answer_handshake(Client& c, size_t index, std::string_view in, std::string_view out);
  void answer_resume(Client& c, size_t index, std::string_view id, uint64_t last,
                     std::string_view out);
  void answer_ready(Client& c, size_t index, std::string_view in, std::string_view out);
  void count_echo(Client& c, size_t index, std::string_view payload);
  void expect_fresh_ready(Client& c, size_t index, std::string_view out);
  void expect_fatal(Client& c, std::string_view out, std::string_view expected);
  void finish(Client& c);
  bool takeover_in_flight(int session, size_t except) const;
  bool attached_and_live(const SessionModel& s) const;
  struct Pending {
    std::vector<std::string> payloads;  // data the server may already have counted
    bool bye = false;                   // ... and then a BYE
  };
  Pending pending_of(const SessionModel& s, size_t resumer) const;
  bool covered(const std::vector<std::string>& payloads, uint64_t seq, uint64_t last) const;

  // End of input
  void write_everything();
  void check_complete(const Client& c, size_t index) const;
  void close_all_and_check();

  Config config_;
  StubBackend store_backend_;  // before the reactors: their stores use it until they go
  ReactorMesh mesh_;           // before the reactors: they use it until they go
  std::vector<std::unique_ptr<Reactor>> reactors_;
  unsigned turns_ = 0;  // alternates the order in which reactors turn
  std::vector<Client> clients_;
  std::vector<SessionModel> sessions_;
  size_t bytes_written_ = 0;
  bool shutdown_requested_ = false;
};

void Harness::run(Reader& in) {
  for (int i = 0; i < kMaxActions && !in.done(); ++i) {
    const uint8_t op_byte = in.u8();
    const auto op = static_cast<Op>((op_byte & 0x0f) % static_cast<uint8_t>(Op::kCount_));
    trace("action %d: op %d client~%d", i, static_cast<int>(op), op_byte >> 4);
    act(op, op_byte >> 4, in);
    step(false);
  }
  write_everything();
  settle();
  for (size_t i = 0; i < clients_.size(); ++i) check_complete(clients_[i], i);
  close_all_and_check();
}

void Harness::act(Op op, size_t client_hint, Reader& in) {
  if (op == Op::kOpen) return open_client();
  if (op == Op::kSettle) return (void)settle();
  if (op == Op::kStep) {
    if (reactors_.size() > 1) turn_reactors(client_hint % reactors_.size());
    return;
  }
  if (op == Op::kShutdown) {
    if (!shutdown_requested_)
      for (auto& reactor : reactors_) reactor->request_shutdown();
    shutdown_requested_ = true;
    for (Client& c : clients_) c.shutdown_error_allowed = true;
    return;
  }
  if (clients_.empty()) return open_client();
  const size_t index = client_hint % clients_.size();
  Client& c = clients_[index];
  switch (op) {
    case Op::kQueueRaw:
      return queue(c, in.bytes(in.u8()));
    case Op::kQueueFrame:
      return queue_frame(c, in);
    case Op::kWrite:
      return (void)write_some(c, in.u8());
    case Op::kToggleRead:
      c.reading = !c.reading;
      return;
    case Op::kShutWrite:
      return shut_write(c);
    case Op::kClose:
      return close_client(c, false);
    case Op::kReset:
      return close_client(c, true);
    case Op::kFrameAndWrite:
      queue_frame(c, in);
      return (void)write_some(c, 0);
    case Op::kRawAndWrite:
      queue(c, in.bytes(in.u8()));
      return (void)write_some(c, 0);
    default:
      return;
  }
}

void Harness::open_client() {
  const auto live =
      std::count_if(clients_.begin(), clients_.end(), [](const Client& c) { return c.open; });
  if (clients_.size() >= kMaxClients || size_t(live) >= kMaxLiveClients || shutdown_requested_)
    return;
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0)
    fail("socketpair: %s", strerror(errno));
  if (config_.server_buffer_bytes > 0) {
    setsockopt(pair[1], SOL_SOCKET, SO_SNDBUF, &config_.server_buffer_bytes, sizeof(int));
    setsockopt(pair[1], SOL_SOCKET, SO_RCVBUF, &config_.server_buffer_bytes, sizeof(int));
  }
  Client c;
  c.fd = pair[0];
  c.refused = mesh_.admitted.load() >= opt().max_connections;
  if (config_.proxy_protocol) send_proxy_header(c, /*malformed=*/clients_.size() % 3 == 2);
  Reactor& reactor = *reactors_[clients_.size() % reactors_.size()];
  clients_.push_back(std::move(c));
  reactor.serve_connected(Fd(pair[1]));
}

// What a balancer writes before any client byte (not part of the Flux
// stream the model checks). A malformed one (version 1 in a v2 header)
// must get the connection closed without a reply.
void Harness::send_proxy_header(Client& c, bool malformed) {
  std::string header("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16);
  header.append("\xc0\x00\x02\x07\x7f\x00\x00\x01\xc7\x38\x23\x82", 12);  // 192.0.2.7:51000
  if (malformed) header[12] = '\x11';
  if (::send(c.fd, header.data(), header.size(), MSG_NOSIGNAL) != ssize_t(header.size()))
    fail("could not write the PROXY header: %s", strerror(errno));
  if (malformed && !c.refused) {
    c.proxy_refused = true;
    c.state = Client::State::kDone;  // nothing may come back
  }
}

void Harness::queue(Client& c, std::string bytes) {
  if (!c.open || c.shut_wr) return;
  c.tx += bytes;
}

void Harness::queue_frame(Client& c, Reader& in) {
  static constexpr std::array<std::string_view, 8> kVersions = {
      "2", "0", "01", "", "1 1", "x", "1 ", "99999999999999999999"};
  static constexpr std::array<uint32_t, 6> kBigSizes = {0, 1000, 5000, 16384, 65535, 65536};
  const auto kind = static_cast<FrameKind>(in.u8() % static_cast<uint8_t>(FrameKind::kCount_));
  std::string bytes;
  switch (kind) {
    case FrameKind::kHello:
      bytes = frame("FLUX_HELLO");
      break;
    case FrameKind::kHello1:
      bytes = frame("FLUX_HELLO 1");
      break;
    case FrameKind::kHelloVersion:
      bytes = frame("FLUX_HELLO " + std::string(kVersions[in.u8() % kVersions.size()]));
      break;
    case FrameKind::kPing:
      bytes = frame("FLUX_PING");
      break;
    case FrameKind::kPingToken:
      bytes = frame("FLUX_PING " + in.bytes(in.u8()));
      break;
    case FrameKind::kBye:
      bytes = frame("FLUX_BYE");
      break;
    case FrameKind::kDataSmall:
      bytes = frame(in.bytes(in.u8()));
      break;
    case FrameKind::kDataBig: {
      const uint8_t choice = in.u8();
      uint32_t size = choice < kBigSizes.size() ? kBigSizes[choice] : opt().max_frame;
      if (choice >= kBigSizes.size() && (choice & 1)) size += 1;  // just past max-frame
      bytes = frame(std::string(size, static_cast<char>('a' + in.u8() % 26)));
      break;
    }
    case FrameKind::kResumeKnown:
      bytes = frame(resume_known(c, in));
      break;
    case FrameKind::kResumeOther:
      bytes = frame(resume_other(in));
      break;
    case FrameKind::kUnknownControl:
      bytes = frame("FLUX_" + in.bytes(in.u8()));
      break;
    case FrameKind::kHeaderOnly:
      bytes = header(in.u32());
      break;
    default:
      break;
  }
  queue(c, std::move(bytes));
}

// FLUX_RESUME of a session the model knows, with a last-seq near the one the
// client has seen. Only one such resume is in flight at a time, so that the
// order in which the server handles two of them is never in question.
std::string Harness::resume_known(Client& c, Reader& in) {
  const uint8_t which = in.u8(), mode = in.u8(), k = in.u8();
  if (sessions_.empty() || takeover_in_flight(-1, kMaxClients) || !c.open || c.shut_wr)
    return "FLUX_RESUME " + std::string(32, 'f') + " 0";
  const int s = which % static_cast<int>(sessions_.size());
  const uint64_t known = sessions_[size_t(s)].known;
  uint64_t last = known;
  switch (mode % 5) {
    case 0:
      last = known;
      break;
    case 1:
      last = known >= k ? known - k : 0;
      break;
    case 2:
      last = known + 1 + k;
      break;
    case 3:
      last = 0;
      break;
    case 4:
      last = std::numeric_limits<uint64_t>::max();
      break;
  }
  std::string text = "FLUX_RESUME " + sessions_[size_t(s)].id + " " + std::to_string(last);
  c.resume_end = c.sent.size() + c.tx.size() + 4 + text.size();
  c.resume_session = s;
  c.resume_floor = known;
  c.resume_queued_live = !sessions_[size_t(s)].dead;
  return text;
}

std::string Harness::resume_other(Reader& in) {
  switch (in.u8() % 8) {
    case 0:
      return "FLUX_RESUME " + std::string(32, '0') + " 0";  // well formed, unknown
    case 1:
      return "FLUX_RESUME " + in.bytes(in.u8());
    case 2:
      return "FLUX_RESUME " + std::string(32, 'A') + " 0";  // upper case: not an id
    case 3:
      return "FLUX_RESUME " + std::string(32, 'a');  // no seq
    case 4:
      return "FLUX_RESUME " + std::string(32, 'a') + " +1";
    case 5:
      return "FLUX_RESUME " + std::string(32, 'a') + " 18446744073709551616";
    case 6:
      return "FLUX_RESUME " + std::string(32, 'a') + " 1 2";
    default:
      return "FLUX_RESUME";
  }
}

// Writes up to `limit` queued bytes (0: as many as the socket takes).
bool Harness::write_some(Client& c, size_t limit) {
  if (!c.open || c.shut_wr || c.write_failed || c.tx.empty()) return false;
  size_t want = limit == 0 ? c.tx.size() : std::min(limit, c.tx.size());
  want = std::min(want, kMaxBytesPerInput - std::min(bytes_written_, kMaxBytesPerInput));
  if (want == 0) return false;
  const ssize_t n = ::send(c.fd, c.tx.data(), want, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
    // The server closed its end: only after a refusal, or once the client
    // half-closed (then we never write). Anything else is a server bug.
    FUZZ_CHECK(c.refused || c.state == Client::State::kDone,
               "write failed (%s) on a connection the server should still serve", strerror(errno));
    c.write_failed = true;
    return false;
  }
  trace("  client %zu -> %zd bytes", static_cast<size_t>(&c - clients_.data()), n);
  c.sent.append(c.tx, 0, size_t(n));
  c.tx.erase(0, size_t(n));
  bytes_written_ += size_t(n);
  return n > 0;
}

void Harness::shut_write(Client& c) {
  if (!c.open || c.shut_wr) return;
  ::shutdown(c.fd, SHUT_WR);
  c.shut_wr = true;
  c.tx.clear();
  if (c.resume_end != std::string::npos && c.resume_end > c.sent.size())
    c.resume_end = std::string::npos;
}

// Settles first so that every complete frame written has been answered and
// checked; a reset then leaves one PONG (no seq) unread, so the server's
// next read or write fails with ECONNRESET / EPIPE.
void Harness::close_client(Client& c, bool reset) {
  if (!c.open) return;
  settle();
  if (reset && !c.shut_wr && !c.write_failed) {
    const std::string ping = frame("FLUX_PING");
    if (::send(c.fd, ping.data(), ping.size(), MSG_NOSIGNAL | MSG_DONTWAIT) > 0) c.sent += ping;
    turn_reactors();
  }
  ::close(c.fd);
  c.fd = -1;
  c.open = false;
  c.tx.clear();
  c.resume_end = std::string::npos;
}

// ------------------------------------------------------------ loop, reading

// One non-blocking turn of every reactor (in an order that alternates), or
// of one only.
void Harness::turn_reactors(std::optional<size_t> only_reactor) {
  if (only_reactor) return reactors_[*only_reactor]->run_once(false);
  const size_t n = reactors_.size();
  const size_t first = turns_++ % n;
  for (size_t i = 0; i < n; ++i) reactors_[(first + i) % n]->run_once(false);
}

size_t Harness::connection_count() const {
  size_t count = 0;
  for (const auto& reactor : reactors_) count += reactor->connection_count();
  return count;
}

void Harness::step(bool read_all, std::optional<size_t> only_reactor) {
  turn_reactors(only_reactor);
  for (size_t i = 0; i < clients_.size(); ++i)
    if (clients_[i].open && (read_all || clients_[i].reading)) drain(clients_[i], i);
  check_reactor();
}

// Turns the loop, reading every client, until nothing moves for three turns.
bool Harness::settle() {
  bool moved_at_all = false;
  int quiet = 0;
  for (int round = 0; round < kSettleRounds && quiet < kQuietRounds; ++round) {
    const uint64_t traffic_before = traffic();
    const bool store_busy = store_backend_.in_flight > 0;  // answers still to come
    turn_reactors();
    bool moved = traffic() != traffic_before || store_busy;
    for (size_t i = 0; i < clients_.size(); ++i)
      if (clients_[i].open) moved |= drain(clients_[i], i);
    check_reactor();
    quiet = moved ? 0 : quiet + 1;
    moved_at_all |= moved;
  }
  return moved_at_all;
}

// Reads what is there (bounded), then checks every whole frame.
bool Harness::drain(Client& c, size_t index) {
  if (c.eof) return false;
  bool moved = false;
  char buffer[65536];
  for (int reads = 0; reads < 32; ++reads) {
    const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) {
      c.rx.append(buffer, size_t(n));
      moved = true;
      continue;
    }
    if (n == 0) {
      c.eof = true;
      moved = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (c.proxy_refused && errno == ECONNRESET) {  // closed at once, unread bytes and all
      c.eof = true;
      moved = true;
      break;
    }
    fail("client %zu: read failed: %s (the server reset a connection its client kept open)", index,
         strerror(errno));
  }
  take_frames(c, index);
  return moved;
}

void Harness::take_frames(Client& c, size_t index) {
  const uint32_t max_out = std::max<uint32_t>(opt().max_frame, 64);
  size_t at = 0;
  while (c.rx.size() - at >= 4) {
    const uint32_t length = length_at(c.rx, at);
    FUZZ_CHECK(length <= max_out, "client %zu: server frame of %u bytes (max-frame %u)", index,
               length, opt().max_frame);
    if (c.rx.size() - at - 4 < length) break;
    on_frame(c, index, std::string_view(c.rx).substr(at + 4, length));
    at += 4 + length;
  }
  c.rx.erase(0, at);
  FUZZ_CHECK(!c.eof || c.rx.empty(), "client %zu: the stream ended inside a frame (%zu bytes left)",
             index, c.rx.size());
}

// Summed over the reactors: a connection handed from one to the other is
// in neither while the message travels, and counted in neither's gauges.
void Harness::check_reactor() const {
  const uint64_t by_state = total([](const ReactorMetrics& m) {
    uint64_t sum = 0;
    for (const auto& gauge : m.connections.by_state) sum += gauge.get();
    return sum;
  });
  FUZZ_CHECK(by_state == connection_count(),
             "connections by state add up to %llu, the reactors hold %zu",
             static_cast<unsigned long long>(by_state), connection_count());
  const uint64_t block = BufferPool::block_size_for(opt().max_frame);
  const uint64_t bound = opt().max_pending + 4 * block + opt().replay_bytes + 256;
  uint64_t queued = 0;
  for (const auto& reactor : reactors_) {
    for (const ConnectionInfo& row : reactor->list_connections()) {
      FUZZ_CHECK(row.bytes_pending <= bound, "a connection queues %llu bytes (bound %llu)",
                 static_cast<unsigned long long>(row.bytes_pending),
                 static_cast<unsigned long long>(bound));
      queued += row.bytes_pending;
    }
  }
  const uint64_t queued_gauge =
      total([](const ReactorMetrics& m) { return m.traffic.bytes_queued.get(); });
  FUZZ_CHECK(queued == queued_gauge, "queued-bytes gauge %llu, connections queue %llu",
             static_cast<unsigned long long>(queued_gauge),
             static_cast<unsigned long long>(queued));
  for (const auto& reactor : reactors_) {
    const uint64_t attached = reactor->metrics().sessions.attached.get();
    FUZZ_CHECK(attached <= reactor->connection_count(),
               "reactor %s: %llu sessions attached to %zu connections", reactor->label().c_str(),
               static_cast<unsigned long long>(attached), reactor->connection_count());
  }
}

// ------------------------------------------------------------------ model

void Harness::finish(Client& c) {
  c.state = Client::State::kDone;
  c.resume_end = std::string::npos;
}

// Whether the server may still hold the session attached to a connection:
// a READY one, or a CLOSING one (after a fatal error) waiting for its client.
bool Harness::attached_and_live(const SessionModel& s) const {
  if (s.attached < 0 || s.dead) return false;
  const Client& a = clients_[size_t(s.attached)];
  return a.open && !a.taken_over && !a.saw_takeover;
}

bool Harness::takeover_in_flight(int session, size_t except) const {
  for (size_t i = 0; i < clients_.size(); ++i) {
    const Client& b = clients_[i];
    if (i == except || b.resume_end == std::string::npos) continue;
    if (session < 0 || b.resume_session == session) return true;
  }
  return false;
}

void Harness::on_frame(Client& c, size_t index, std::string_view out) {
  trace("  client %zu <- %s", index, show(out).c_str());
  FUZZ_CHECK(c.state != Client::State::kDone,
             "client %zu: %s after its last frame (fatal error or BYE)", index, show(out).c_str());
  if (c.refused) {
    FUZZ_CHECK(out == "FLUX_ERROR server-full", "client %zu past max-connections got %s", index,
               show(out).c_str());
    return finish(c);
  }
  if (!c.replay.empty()) {
    FUZZ_CHECK(out == c.replay.front(), "client %zu: replayed %s, expected %s", index,
               show(out).c_str(), show(c.replay.front()).c_str());
    c.replay.pop_front();
    return;
  }
  if (out == "FLUX_ERROR server-shutdown") {
    FUZZ_CHECK(c.shutdown_error_allowed, "client %zu: server-shutdown with no shutdown", index);
    return finish(c);
  }
  if (out == "FLUX_ERROR session-taken-over") {
    // Told by a resume elsewhere, or by a replay-gap that discarded its session.
    FUZZ_CHECK(c.state == Client::State::kReady &&
                   (c.taken_over || c.may_close || takeover_in_flight(c.session, index)),
               "client %zu: session-taken-over while nobody resumed its session", index);
    FUZZ_CHECK(!c.taken_over || c.budget == 0,
               "client %zu: taken over before %llu echoes counted in the resumed seq", index,
               static_cast<unsigned long long>(c.budget));
    c.saw_takeover = true;
    return finish(c);
  }
  const Cut next = cut_frame(c.sent, c.answered, opt().max_frame);
  if (next.kind == Cut::kTooLarge) return expect_fatal(c, out, "FLUX_ERROR frame-too-large");
  FUZZ_CHECK(next.kind == Cut::kFrame, "client %zu: %s arrived, but every frame sent was answered",
             index, show(out).c_str());
  c.answered += next.size;
  if (c.resume_end != std::string::npos && c.answered >= c.resume_end)
    c.resume_end = std::string::npos;
  if (c.state == Client::State::kHandshake) return answer_handshake(c, index, next.payload, out);
  answer_ready(c, index, next.payload, out);
}

void Harness::expect_fatal(Client& c, std::string_view out, std::string_view expected) {
  FUZZ_CHECK(out == expected, "expected %s, got %s", show(expected).c_str(), show(out).c_str());
  finish(c);
}

void Harness::answer_handshake(Client& c, size_t index, std::string_view in, std::string_view out) {
  const Words w = split(in);
  if (w.word == "FLUX_HELLO") {
    if (!w.has_rest || w.rest == "1") return expect_fresh_ready(c, index, out);
    if (w.rest.empty() || w.rest.find(' ') != std::string_view::npos)
      return expect_fatal(c, out, "FLUX_ERROR handshake-expected");
    return expect_fatal(c, out, "FLUX_ERROR unsupported-version");
  }
  if (w.word == "FLUX_RESUME" && w.has_rest) {
    const Words args = split(w.rest);
    const std::optional<uint64_t> last = args.has_rest ? decimal(args.rest) : std::nullopt;
    if (!args.word.empty() && last) return answer_resume(c, index, args.word, *last, out);
  }
  expect_fatal(c, out, "FLUX_ERROR handshake-expected");
}

void Harness::expect_fresh_ready(Client& c, size_t index, std::string_view out) {
  FUZZ_CHECK(out.size() == 11 + 32 + 2 && out.substr(0, 11) == "FLUX_READY " &&
                 is_session_id(out.substr(11, 32)) && out.substr(43) == " 0",
             "client %zu: HELLO answered %s", index, show(out).c_str());
  const std::string id(out.substr(11, 32));
  for (const SessionModel& s : sessions_)
    FUZZ_CHECK(s.id != id, "client %zu: a new session reuses id %s", index, id.c_str());
  SessionModel s;
  s.id = id;
  s.attached = static_cast<int>(index);
  sessions_.push_back(std::move(s));
  c.session = static_cast<int>(sessions_.size() - 1);
  c.state = Client::State::kReady;
}

// What the client the session is attached to has sent and not yet seen
// answered: the server may have counted its data frames already (up to a BYE,
// which would end the session).
Harness::Pending Harness::pending_of(const SessionModel& s, size_t resumer) const {
  Pending p;
  if (s.attached < 0 || size_t(s.attached) == resumer) return p;
  const Client& a = clients_[size_t(s.attached)];
  if (a.state != Client::State::kReady || a.taken_over || a.lenient) return p;
  for (size_t at = a.answered;;) {
    const Cut cut = cut_frame(a.sent, at, opt().max_frame);
    if (cut.kind != Cut::kFrame) break;
    at += cut.size;
    if (!is_control(cut.payload)) {
      p.payloads.emplace_back(cut.payload);
    } else if (cut.payload == "FLUX_BYE") {
      p.bye = true;
      break;
    }
  }
  return p;
}

// Would a session at `seq`, having sent `payloads`, still hold every frame
// after `last`? (The replay buffer keeps the longest suffix within
// --replay-frames and --replay-bytes, 4 bytes of length per frame.)
bool Harness::covered(const std::vector<std::string>& payloads, uint64_t seq, uint64_t last) const {
  if (last == seq) return true;
  if (last > seq) return false;
  uint64_t count = 0, bytes = 0;
  for (uint64_t i = seq; i > 0; --i) {
    const uint64_t need = 4 + payloads[i - 1].size();
    if (count + 1 > opt().replay_frames || bytes + need > opt().replay_bytes) break;
    ++count;
    bytes += need;
  }
  return seq - last <= count;
}

void Harness::answer_resume(Client& c, size_t index, std::string_view id, uint64_t last,
                            std::string_view out) {
  SessionModel* found = nullptr;
  for (SessionModel& s : sessions_)
    if (s.id == id) found = &s;
  if (!found || found->dead) {
    // Its holder's BYE may have been checked first, yet handled by the
    // server after this resume, which then saw the session's seq (bad-seq).
    const bool raced = found && c.resume_queued_live &&
                       c.resume_session == static_cast<int>(found - sessions_.data());
    const bool bad_seq_ok = raced && out == "FLUX_INVALID bad-seq" && last > c.resume_floor;
    FUZZ_CHECK(out == "FLUX_INVALID session-unknown" || bad_seq_ok,
               "client %zu: resume of %s answered %s", index,
               found ? "a finished session" : "an unknown id", show(out).c_str());
    return;
  }
  SessionModel& s = *found;
  const Pending p = pending_of(s, index);
  const uint64_t lo = s.known, hi = s.known + p.payloads.size();
  // The holder may have gone on echoing after the server answered this
  // resume (bad-seq and replay-gap leave it attached), and those echoes may
  // have been checked first: the seq the server saw can be as low as when
  // the resume was queued.
  const uint64_t floor = c.resume_session == static_cast<int>(&s - sessions_.data())
                             ? std::min(c.resume_floor, lo)
                             : lo;
  std::vector<std::string> all = s.payloads;
  all.insert(all.end(), p.payloads.begin(), p.payloads.end());
  Client* previous =
      s.attached >= 0 && size_t(s.attached) != index ? &clients_[size_t(s.attached)] : nullptr;
  auto orphan_previous = [&] {  // the spec does not say what happens to it
    if (previous && previous->state == Client::State::kReady) previous->lenient = true;
  };
  if (out == "FLUX_INVALID session-unknown") {
    FUZZ_CHECK(config_.tight_replay_memory || p.bye || s.maybe_gone,
               "client %zu: live session %s answered unknown", index, s.id.c_str());
    s.dead = true;
    return orphan_previous();
  }
  if (out == "FLUX_INVALID bad-seq") {
    FUZZ_CHECK(last > floor, "client %zu: bad-seq for last-seq %llu, session seq >= %llu", index,
               static_cast<unsigned long long>(last), static_cast<unsigned long long>(floor));
    return;
  }
  if (out == "FLUX_INVALID replay-gap") {
    bool possible = false;
    for (uint64_t seq = std::max(floor, last); seq <= hi && !possible; ++seq)
      possible = config_.tight_replay_memory ? last < seq : !covered(all, seq, last);
    FUZZ_CHECK(possible, "client %zu: replay-gap for last-seq %llu, seq in [%llu, %llu], all kept",
               index, static_cast<unsigned long long>(last), static_cast<unsigned long long>(floor),
               static_cast<unsigned long long>(hi));
    // The spec discards the session; it is silent on a session still in use
    // by a live connection. Accepted: it stays with that connection (and a
    // later resume finds it or not), or that connection is closed with a
    // fatal error.
    if (!attached_and_live(s)) {
      s.dead = true;
    } else {
      s.maybe_gone = true;
      if (previous) previous->may_close = true;
    }
    return;
  }
  const std::string prefix = "FLUX_READY " + s.id + " ";
  const std::optional<uint64_t> seq =
      out.substr(0, prefix.size()) == prefix ? decimal(out.substr(prefix.size())) : std::nullopt;
  FUZZ_CHECK(seq.has_value(), "client %zu: resume of %s answered %s", index, s.id.c_str(),
             show(out).c_str());
  FUZZ_CHECK(*seq >= lo && *seq <= hi && last <= *seq,
             "client %zu: resumed at seq %llu with last-seq %llu; the session was at %llu..%llu",
             index, static_cast<unsigned long long>(*seq), static_cast<unsigned long long>(last),
             static_cast<unsigned long long>(lo), static_cast<unsigned long long>(hi));
  FUZZ_CHECK(config_.tight_replay_memory || covered(all, *seq, last),
             "client %zu: READY although frames after %llu were evicted", index,
             static_cast<unsigned long long>(last));
  all.resize(*seq);
  c.replay.assign(all.begin() + static_cast<std::ptrdiff_t>(last), all.end());
  if (previous && previous->open) {
    FUZZ_CHECK(!previous->saw_takeover || *seq == lo,
               "client %zu: resumed at %llu but the old connection was told at %llu", index,
               static_cast<unsigned long long>(*seq), static_cast<unsigned long long>(lo));
    if (previous->state == Client::State::kReady) {
      previous->taken_over = true;
      previous->budget = *seq - lo;
    }
  }
  s.payloads = std::move(all);
  s.known = *seq;
  s.attached = static_cast<int>(index);
  c.session = static_cast<int>(&s - sessions_.data());
  c.state = Client::State::kReady;
}

void Harness::answer_ready(Client& c, size_t index, std::string_view in, std::string_view out) {
  if ((c.lenient || c.may_close) && is_fatal_error(out)) return finish(c);
  if (!is_control(in)) {
    FUZZ_CHECK(out == in, "client %zu: echo %s of data %s", index, show(out).c_str(),
               show(in).c_str());
    return count_echo(c, index, in);
  }
  const Words w = split(in);
  std::string expected;
  if (w.word == "FLUX_PING") {
    expected = w.has_rest ? "FLUX_PONG " + std::string(w.rest) : "FLUX_PONG";
  } else if (in == "FLUX_BYE") {
    FUZZ_CHECK(!c.taken_over, "client %zu: BYE served after its session was resumed elsewhere",
               index);
    FUZZ_CHECK(out == "FLUX_BYE", "client %zu: BYE answered %s", index, show(out).c_str());
    if (c.session >= 0 && !c.lenient) sessions_[size_t(c.session)].dead = true;
    return finish(c);
  } else if (w.word == "FLUX_HELLO" || w.word == "FLUX_RESUME") {
    expected = "FLUX_ERROR already-ready";
  } else {
    expected = "FLUX_ERROR unknown-command";
  }
  FUZZ_CHECK(out == expected, "client %zu: %s answered %s, expected %s", index, show(in).c_str(),
             show(out).c_str(), show(expected).c_str());
}

void Harness::count_echo(Client& c, size_t index, std::string_view payload) {
  if (c.lenient || c.session < 0) return;
  if (c.taken_over) {
    FUZZ_CHECK(c.budget > 0, "client %zu: an echo past the seq its session was resumed at", index);
    --c.budget;
    return;
  }
  SessionModel& s = sessions_[size_t(c.session)];
  FUZZ_CHECK(s.attached == static_cast<int>(index),
             "client %zu: echo for a session attached elsewhere", index);
  ++s.known;
  s.payloads.emplace_back(payload);
}

// ------------------------------------------------------------ end of input

// Writes every queued byte (up to the input's byte budget), reading all the
// while, until nothing is left to write or nothing moves any more.
void Harness::write_everything() {
  int quiet = 0;
  for (int round = 0; round < kSettleRounds && quiet < kQuietRounds; ++round) {
    const uint64_t traffic_before = traffic();
    bool moved = false;
    for (Client& c : clients_) moved |= write_some(c, 0);
    const bool pending = std::any_of(clients_.begin(), clients_.end(), [](const Client& c) {
      return c.open && !c.shut_wr && !c.write_failed && !c.tx.empty();
    });
    step(true);
    if (!pending) return;
    moved |= traffic() != traffic_before;
    quiet = moved ? 0 : quiet + 1;
  }
}

// Everything written was read and answered; a finished connection got EOF.
void Harness::check_complete(const Client& c, size_t index) const {
  if (!c.open) return;
  if (c.state == Client::State::kDone || c.shut_wr) {
    FUZZ_CHECK(c.eof, "client %zu: no EOF after %s", index,
               c.shut_wr ? "its half-close" : "the last frame (fatal error or BYE)");
  }
  if (c.state == Client::State::kDone || c.lenient) return;
  FUZZ_CHECK(c.replay.empty(), "client %zu: %zu replayed frames never came", index,
             c.replay.size());
  FUZZ_CHECK(!c.taken_over || c.budget == 0,
             "client %zu: %llu echoes before the takeover never came", index,
             static_cast<unsigned long long>(c.budget));
  FUZZ_CHECK(!c.taken_over || c.shut_wr,
             "client %zu: its session was resumed elsewhere but it was never told", index);
  const Cut next = cut_frame(c.sent, c.answered, opt().max_frame);
  if (c.tx.empty() && !c.write_failed) {
    FUZZ_CHECK(next.kind != Cut::kFrame, "client %zu: frame %s was never answered", index,
               show(next.payload).c_str());
    FUZZ_CHECK(next.kind != Cut::kTooLarge, "client %zu: an oversized header was never answered",
               index);
  }
}

void Harness::close_all_and_check() {
  for (Client& c : clients_) {
    if (!c.open) continue;
    ::close(c.fd);
    c.open = false;
  }
  for (int round = 0;
       round < kSettleRounds && (mesh_.admitted.load() > 0 || store_backend_.in_flight > 0);
       ++round)
    turn_reactors();
  check_reactor();
  FUZZ_CHECK(connection_count() == 0 && mesh_.admitted.load() == 0,
             "%zu connections still open after every client left (%llu admitted)",
             connection_count(), static_cast<unsigned long long>(mesh_.admitted.load()));
  for (const auto& reactor : reactors_) {
    const ReactorMetrics& m = reactor->metrics();
    FUZZ_CHECK(m.traffic.bytes_queued.get() == 0, "%llu bytes still queued with no connection",
               static_cast<unsigned long long>(m.traffic.bytes_queued.get()));
    FUZZ_CHECK(m.sessions.attached.get() == 0, "%llu sessions attached with no connection",
               static_cast<unsigned long long>(m.sessions.attached.get()));
    FUZZ_CHECK(m.pool.block_bytes_in_use.get() == m.sessions.replay_memory_bytes.get(),
               "pooled bytes in use %llu != replay memory %llu with no connection (a block leaked)",
               static_cast<unsigned long long>(m.pool.block_bytes_in_use.get()),
               static_cast<unsigned long long>(m.sessions.replay_memory_bytes.get()));
  }
}

}  // namespace
}  // namespace flux::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  signal(SIGPIPE, SIG_IGN);  // the gateway uses MSG_NOSIGNAL; this guards the harness
  const char* trace = getenv("FLUX_FUZZ_TRACE");
  flux::fuzz::g_trace = trace && *trace && *trace != '0';
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  flux::fuzz::Reader in(data, size);
  const flux::fuzz::Config config = flux::fuzz::decode_config(in);
  flux::fuzz::Harness harness(config);
  harness.run(in);
  return 0;
}
