// Resume races on several reactors (docs/protocol.md section 8 and decisions
// 11 and 13; docs/protocol.md section 8), against the real binary.
//
// A gateway with N reactors must give every race exactly what one reactor
// gives: the resumes, BYEs, expiries, replay gaps and shutdowns touching one
// session happen in SOME serial order, and every connection's answer is the
// one that order implies. With one reactor that order is the loop's; the
// test does not know it, so each round checks that the answers, taken
// together, are consistent with a serial order:
//
//   owner: HELLO, 5 echoes (seq 5)        racers: 50 sockets, all connected
//                                          first, then 50 FLUX_RESUME <sid> 5
//                                          written back to back
//   every FLUX_READY must name exactly <sid> (32 lowercase hex) and seq 5;
//   every resume that succeeds takes the session from the one before it
//   (FLUX_ERROR session-taken-over, then EOF), so exactly one connection is
//   left holding it, or none if it ended (BYE, expiry, replay gap).
//
// The survivor then proves the session is whole: it echoes (seq 6), a new
// connection takes it over with last-seq 5 and must get READY <sid> 6 plus
// that frame replayed, ends it with FLUX_BYE, and a last resume must find
// no session (no stale copy left on another reactor).
//
// Each test runs its rounds against one gateway (scenario 5: one gateway per
// round), then requires a fresh HELLO + echo to work and exit status 0 on
// SIGTERM; GatewayProcess fails the test on any sanitizer report.
//
// FLUX_RACE_ROUNDS (default 200) sets the rounds of scenarios 1, 2 and 4;
// scenarios 3 and 5 run a quarter of it (a round of 3 waits out part of a
// resume window, a round of 5 starts a gateway). CTest runs the suite with
// FLUX_TEST_REACTORS=1 (the reference), 2 and 4.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/assertions.h"
#include "support/deadline.h"
#include "support/gateway_process.h"
#include "support/test_client.h"

namespace flux::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::AssertionFailure;
using ::testing::AssertionResult;
using ::testing::AssertionSuccess;

constexpr int kRacers = 50;
constexpr uint64_t kOwnerFrames = 5;  // the session's seq when the race starts
constexpr int kDefaultRounds = 200;
// Bound on one round's answers: generous for a sanitizer build, and only
// reached when the gateway misbehaves.
constexpr seconds kRoundWait{15};
constexpr seconds kExitWait{15};
constexpr size_t kShownTranscripts = 6;

constexpr std::string_view kTakenOverFrame = "FLUX_ERROR session-taken-over";
constexpr std::string_view kUnknownFrame = "FLUX_INVALID session-unknown";
constexpr std::string_view kReplayGapFrame = "FLUX_INVALID replay-gap";
constexpr std::string_view kShutdownFrame = "FLUX_ERROR server-shutdown";
constexpr std::string_view kByeFrame = "FLUX_BYE";

int rounds(int divisor = 1) {
  int n = kDefaultRounds;
  if (const char* env = std::getenv("FLUX_RACE_ROUNDS"); env && *env) n = std::atoi(env);
  return std::max(1, n / divisor);
}

std::string resume_frame(std::string_view id, uint64_t last_seq) {
  return "FLUX_RESUME " + std::string(id) + " " + std::to_string(last_seq);
}

std::string ready_frame(std::string_view id, uint64_t seq) {
  return "FLUX_READY " + std::string(id) + " " + std::to_string(seq);
}

std::string owner_frame(uint64_t n) {
  return "owner-" + std::to_string(n);
}

// How the gateway is doing, for a failure message: a crash is often the
// whole story, and a dying process needs a moment to be reaped.
std::string fate(GatewayProcess& gateway) {
  gateway.wait_exit(after(milliseconds(500)));
  return "gateway " + gateway.status_text();
}

// One connection of a race and every frame it received during it.
struct Peer {
  TestClient client;
  std::vector<std::string> frames;
  bool dead = false;  // poll reported an error that read() did not explain

  // Takes in whatever has arrived, without waiting.
  void drain() {
    client.receive_available();
    while (auto frame = client.pop_frame()) frames.push_back(std::move(*frame));
  }

  bool closed() const { return client.fd() < 0 || client.peer_closed() || dead; }
  bool answered() const { return !frames.empty() || closed(); }
  bool got(size_t i, std::string_view payload) const {
    return frames.size() > i && frames[i] == payload;
  }

  // `["FLUX_READY ...", "FLUX_ERROR ..."] EOF from server, 0 unread bytes`
  std::string transcript() const {
    std::string out = "[";
    for (size_t i = 0; i < frames.size(); ++i) {
      if (i > 0) out += ", ";
      out += describe_payload(frames[i]);
    }
    return out + "] " + (dead ? "poll error, " : "") + client.state();
  }
};

// Reads from every peer still open until `done()` holds, every peer is
// closed, or `deadline`. Returns done().
bool pump(const std::vector<Peer*>& peers, const std::function<bool()>& done, Deadline deadline) {
  std::vector<pollfd> fds;
  std::vector<Peer*> polled;
  while (!done()) {
    fds.clear();
    polled.clear();
    for (Peer* p : peers) {
      if (p->closed()) continue;
      fds.push_back(pollfd{p->client.fd(), POLLIN, 0});
      polled.push_back(p);
    }
    if (fds.empty()) break;
    const int ready = ::poll(fds.data(), fds.size(), poll_timeout_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const size_t before = polled[i]->client.unread_bytes() + polled[i]->frames.size();
      polled[i]->drain();
      const size_t after = polled[i]->client.unread_bytes() + polled[i]->frames.size();
      // An error poll reports but read() neither returns nor names as a
      // reset would otherwise be polled again at once, forever.
      if (after == before && !polled[i]->closed() && (fds[i].revents & (POLLERR | POLLNVAL)))
        polled[i]->dead = true;
    }
  }
  return done();
}

// What one racer's transcript says happened to it.
enum class Outcome {
  kHolds,      // READY <sid> 5, still open: holds the session
  kTakenOver,  // READY <sid> 5, session-taken-over, EOF
  kUnknown,    // session-unknown, still open in HANDSHAKE
  kReplayGap,  // replay-gap, still open in HANDSHAKE
  kBadReady,   // a FLUX_READY naming another id or seq (a torn session id)
  kOther,      // anything else
};

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::kHolds:
      return "holds";
    case Outcome::kTakenOver:
      return "taken-over";
    case Outcome::kUnknown:
      return "session-unknown";
    case Outcome::kReplayGap:
      return "replay-gap";
    case Outcome::kBadReady:
      return "READY-with-wrong-id-or-seq";
    case Outcome::kOther:
      return "other";
  }
  return "?";
}

Outcome classify(const Peer& p, std::string_view ready) {
  const auto& f = p.frames;
  const bool clean_close = p.closed() && p.client.unread_bytes() == 0;
  if (!f.empty() && f[0].starts_with("FLUX_READY ") && f[0] != ready) return Outcome::kBadReady;
  if (f.size() == 1 && f[0] == ready && !p.closed()) return Outcome::kHolds;
  if (f.size() == 2 && f[0] == ready && f[1] == kTakenOverFrame && clean_close)
    return Outcome::kTakenOver;
  if (f.size() == 1 && f[0] == kUnknownFrame && !p.closed()) return Outcome::kUnknown;
  if (f.size() == 1 && f[0] == kReplayGapFrame && !p.closed()) return Outcome::kReplayGap;
  return Outcome::kOther;
}

// The racers' outcomes of one round, with the transcripts worth showing.
struct Tally {
  std::map<Outcome, int> count;
  std::vector<std::string> odd;  // transcripts of kBadReady / kOther racers

  int operator[](Outcome o) const {
    auto it = count.find(o);
    return it == count.end() ? 0 : it->second;
  }

  std::string summary() const {
    std::string out;
    for (const auto& [outcome, n] : count)
      out += std::string(out.empty() ? "" : ", ") + std::to_string(n) + " " + to_string(outcome);
    return out;
  }
};

// One session, its owner and the connections racing to resume it.
struct Race {
  std::string id;
  Peer owner;
  std::vector<Peer> racers = std::vector<Peer>(kRacers);

  std::string ready() const { return ready_frame(id, kOwnerFrames); }

  std::vector<Peer*> everyone() {
    std::vector<Peer*> all{&owner};
    for (auto& r : racers) all.push_back(&r);
    return all;
  }

  int count(const std::function<bool(const Peer&)>& pred) const {
    return static_cast<int>(std::count_if(racers.begin(), racers.end(), pred));
  }

  Tally tally() const {
    Tally t;
    for (const auto& r : racers) {
      const Outcome o = classify(r, ready());
      ++t.count[o];
      if ((o == Outcome::kBadReady || o == Outcome::kOther) && t.odd.size() < kShownTranscripts)
        t.odd.push_back(r.transcript());
    }
    return t;
  }

  // The holder left by the race: the one racer that kept its READY.
  Peer* survivor() {
    for (auto& r : racers)
      if (classify(r, ready()) == Outcome::kHolds) return &r;
    return nullptr;
  }

  // Every racer answered, the owner is closed (taken over, or after its
  // BYE), and at most one racer still holds a READY: the end state of a
  // serial order. Reached early only on the way to a wrong answer, which
  // the round's checks then name.
  bool settled(bool with_owner, int max_holders) const {
    if (with_owner && !owner.closed()) return false;
    if (count([](const Peer& r) { return !r.answered(); }) > 0) return false;
    return count([](const Peer& r) {
             return !r.closed() && !r.frames.empty() && r.frames[0].starts_with("FLUX_READY ");
           }) <= max_holders;
  }
};

class ResumeRaceTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!summary_.empty()) std::printf("[ race     ] %s\n", summary_.c_str());
  }

  // The owner's session: HELLO, then kOwnerFrames echoes (seq kOwnerFrames).
  static AssertionResult open_session(uint16_t port, Race& race) {
    TestClient& c = race.owner.client;
    if (auto r = c.connect(port); !r) return r << " (owner connect)";
    if (auto r = c.handshake(after(kPromptWait), &race.id); !r) return r;
    for (uint64_t n = 1; n <= kOwnerFrames; ++n)
      if (auto r = c.send_frame(owner_frame(n)); !r) return r;
    for (uint64_t n = 1; n <= kOwnerFrames; ++n)
      if (auto r = c.expect_frame(owner_frame(n)); !r) return r << " (owner echo " << n << ")";
    return AssertionSuccess();
  }

  // Every racer connected (the kernel completed the handshakes) before any
  // writes, so the RESUMEs below go out within microseconds of each other.
  static AssertionResult connect_racers(uint16_t port, Race& race) {
    for (auto& r : race.racers)
      if (auto started = r.client.start_connect(port); !started) return started;
    const Deadline deadline = after(kPromptWait);
    for (auto& r : race.racers)
      if (auto done = r.client.finish_connect(deadline); !done) return done << " (racer)";
    return AssertionSuccess();
  }

  // Writes racer i's RESUME (last-seq from `last_seq(i)`), back to back.
  // `between(i)` runs before racer i's write (the owner's BYE, a SIGTERM).
  static void send_resumes(Race& race, const std::function<uint64_t(int)>& last_seq,
                           const std::function<void(int)>& between = nullptr) {
    for (int i = 0; i < kRacers; ++i) {
      if (between) between(i);
      // Small frame, empty socket buffer: the kernel takes it whole. A
      // failure (the gateway gone) shows up in the transcripts.
      race.racers[i].client.send_available(encode_frame(resume_frame(race.id, last_seq(i))));
    }
    if (between) between(kRacers);
  }

  // Ends the round's connections: a FIN where the gateway already closed
  // (it waits for our EOF, up to --linger), an RST for the ones still open
  // (HANDSHAKE racers), so no TIME_WAIT piles up on our side.
  static void close_all(Race& race) {
    for (Peer* p : race.everyone()) {
      if (p->closed())
        p->client.close();
      else
        p->client.reset();
    }
  }

  // No session `id` any more, on any reactor: a resume with its last seq
  // is session-unknown.
  static AssertionResult session_gone(uint16_t port, std::string_view id, uint64_t seq) {
    TestClient probe;
    if (auto r = probe.connect(port); !r) return r << " (probe)";
    if (auto r = probe.send_frame(resume_frame(id, seq)); !r) return r;
    auto r = probe.expect_frame(kUnknownFrame);
    probe.reset();
    if (!r) return r << " (resume of the ended session " << id << ")";
    return AssertionSuccess();
  }

  // The survivor holds the session whole: it echoes (seq kOwnerFrames + 1);
  // a new connection taking it over with last-seq kOwnerFrames gets READY
  // with that seq and the frame replayed; the survivor is told and closed;
  // FLUX_BYE ends the session, and nothing of it is left.
  static AssertionResult survivor_holds_whole_session(uint16_t port, Race& race, Peer& survivor) {
    const std::string after_race = "after-race";
    const uint64_t seq = kOwnerFrames + 1;
    if (auto r = survivor.client.send_frame(after_race); !r) return r << " (survivor)";
    if (auto r = survivor.client.expect_frame(after_race); !r) return r << " (survivor echo)";
    TestClient next;
    if (auto r = next.connect(port); !r) return r;
    if (auto r = next.send_frame(resume_frame(race.id, kOwnerFrames)); !r) return r;
    if (auto r = next.expect_frame(ready_frame(race.id, seq)); !r)
      return r << " (resume after the survivor's echo: seq must be " << seq << ")";
    if (auto r = next.expect_frame(after_race); !r) return r << " (replay of seq " << seq << ")";
    if (auto r = survivor.client.expect_frame(kTakenOverFrame); !r) return r << " (survivor)";
    if (auto r = survivor.client.expect_closed(); !r) return r << " (survivor)";
    if (auto r = next.send_frame(kByeFrame); !r) return r;
    if (auto r = next.expect_frame(kByeFrame); !r) return r;
    if (auto r = next.expect_closed(); !r) return r;
    return session_gone(port, race.id, seq);
  }

  // After the rounds: still serving, and a clean exit on SIGTERM.
  static void expect_clean_end(GatewayProcess& gateway) {
    ASSERT_TRUE(gateway.running()) << "gateway " << gateway.status_text();
    EXPECT_TRUE(serves_new_client(gateway.port(), "fresh client after the races"));
    gateway.signal(SIGTERM);
    const auto status = gateway.wait_exit(after(kExitWait));
    ASSERT_TRUE(status.has_value()) << "no exit within " << kExitWait.count() << " s of SIGTERM";
    EXPECT_TRUE(status->success()) << "gateway ended with " << status->to_string();
  }

  // The failure of round `round`, with everything needed to see why.
  static AssertionResult round_failure(int round, const std::string& why, const Race& race,
                                       GatewayProcess& gateway) {
    const Tally t = race.tally();
    auto f = AssertionFailure() << "round " << round << ": " << why << "\n  " << fate(gateway)
                                << "\n  racers: " << t.summary()
                                << "\n  owner: " << race.owner.transcript();
    for (const auto& s : t.odd) f << "\n  racer: " << s;
    return f;
  }

  // `verdict`, with the round's context when it is a failure.
  static AssertionResult in_round(int round, const AssertionResult& verdict, const Race& race,
                                  GatewayProcess& gateway) {
    if (verdict) return verdict;
    return round_failure(round, verdict.message(), race, gateway);
  }

  void note_summary(std::string s) { summary_ = std::move(s); }

 private:
  std::string summary_;
};

// The owner lost the session to a resume: session-taken-over, then EOF.
AssertionResult owner_taken_over(const Race& race) {
  const Peer& o = race.owner;
  if (o.frames.size() == 1 && o.got(0, kTakenOverFrame) && o.closed() &&
      o.client.unread_bytes() == 0)
    return AssertionSuccess();
  return AssertionFailure() << "the owner must get exactly session-taken-over, then EOF";
}

// Every resume succeeded in turn: the owner and all racers but one taken
// over, one holder.
AssertionResult one_holder_left(const Race& race, const Tally& t) {
  if (auto owner = owner_taken_over(race); !owner) return owner;
  if (t[Outcome::kTakenOver] != kRacers - 1 || t[Outcome::kHolds] != 1)
    return AssertionFailure() << "want " << kRacers - 1 << " taken-over and 1 holder";
  return AssertionSuccess();
}

// Scenario 2: the BYE came first (owner: FLUX_BYE, EOF; every racer
// session-unknown), or a resume did (one_holder_left). Sets *bye_first.
AssertionResult bye_race_verdict(const Race& race, const Tally& t, bool* bye_first) {
  *bye_first = race.owner.got(0, kByeFrame);
  if (!*bye_first) {
    if (auto ok = one_holder_left(race, t); !ok)
      return ok << " (the owner got no FLUX_BYE, so a resume came first)";
    return AssertionSuccess();
  }
  if (race.owner.frames.size() != 1 || !race.owner.closed())
    return AssertionFailure() << "owner: FLUX_BYE must be followed by EOF";
  if (t[Outcome::kUnknown] != kRacers)
    return AssertionFailure() << "the owner's BYE ended the session: every racer must get "
                                 "session-unknown";
  return AssertionSuccess();
}

// Scenario 3: expired first (every racer session-unknown), or a resume came
// first (49 taken over, 1 holder). Sets *expired.
AssertionResult expiry_race_verdict(const Tally& t, bool* expired) {
  *expired = t[Outcome::kUnknown] == kRacers;
  if (*expired || (t[Outcome::kTakenOver] == kRacers - 1 && t[Outcome::kHolds] == 1))
    return AssertionSuccess();
  return AssertionFailure() << "want all " << kRacers << " session-unknown (expired first), or "
                            << kRacers - 1 << " taken-over and 1 holder (a resume first)";
}

// Scenario 4: see the test. `asks_gap(i)`: racer i sent last-seq 0.
AssertionResult gap_race_verdict(const Race& race, const Tally& t,
                                 const std::function<bool(int)>& asks_gap) {
  if (auto owner = owner_taken_over(race); !owner) return owner;
  for (int i = 0; i < kRacers; ++i) {
    const Outcome o = classify(race.racers[i], race.ready());
    const bool ok = asks_gap(i) ? (o == Outcome::kReplayGap || o == Outcome::kUnknown)
                                : (o == Outcome::kTakenOver || o == Outcome::kUnknown);
    if (!ok)
      return AssertionFailure() << "racer " << i << " (last-seq " << (asks_gap(i) ? 0 : 5)
                                << ") ended " << to_string(o) << ": "
                                << race.racers[i].transcript();
  }
  if (t[Outcome::kReplayGap] != 1)
    return AssertionFailure() << "want exactly one replay-gap (the first last-seq-0 resume)";
  return AssertionSuccess();
}

// Scenario 5, per connection: what it may see when SIGTERM lands in the
// middle of the race. Every open connection is sent server-shutdown, the
// session's holder at that moment included; then EOF, nothing more.
//   nothing, then closed         (never accepted: the listener's RST)
//   server-shutdown              (accepted, RESUME not served)
//   READY, session-taken-over    (a later resume took it, before shutdown)
//   READY, server-shutdown       (held the session at shutdown)
//   session-unknown, server-shutdown
// The owner: session-taken-over, or server-shutdown (held it at shutdown).
bool shutdown_transcript_ok(const Peer& p, std::string_view ready, bool* holds) {
  const auto& f = p.frames;
  *holds = false;
  if (!p.closed() || p.client.unread_bytes() != 0) return false;
  if (f.empty()) return true;
  if (f.size() == 1) return f[0] == kShutdownFrame;
  if (f.size() != 2) return false;
  if (f[0] == ready && f[1] == kTakenOverFrame) return true;
  if (f[0] == ready && f[1] == kShutdownFrame) return *holds = true;
  return f[0] == kUnknownFrame && f[1] == kShutdownFrame;
}

// Scenario 5: every transcript allowed, and exactly one holder at shutdown
// (each successful resume took the session from exactly one connection).
// Sets *readies to the number of racers that got READY.
AssertionResult shutdown_race_verdict(const Race& race, int* readies) {
  const Peer& owner = race.owner;
  const bool owner_holds = owner.frames.size() == 1 && owner.frames[0] == kShutdownFrame;
  const bool owner_lost = owner.frames.size() == 1 && owner.frames[0] == kTakenOverFrame;
  if (!owner.closed() || owner.client.unread_bytes() != 0 || !(owner_holds || owner_lost))
    return AssertionFailure() << "owner: want session-taken-over or server-shutdown, then EOF";
  int holders = owner_holds ? 1 : 0;
  *readies = 0;
  for (int i = 0; i < kRacers; ++i) {
    bool holds = false;
    if (!shutdown_transcript_ok(race.racers[i], race.ready(), &holds))
      return AssertionFailure() << "racer " << i << ": " << race.racers[i].transcript();
    holders += holds ? 1 : 0;
    *readies += race.racers[i].got(0, race.ready()) ? 1 : 0;
  }
  if (holders != 1)
    return AssertionFailure() << "want exactly one holder at shutdown (the owner or a READY "
                                 "racer, then server-shutdown), got "
                              << holders;
  return AssertionSuccess();
}

// Scenario 1. All 50 resumes succeed in turn: READY <sid> 5 for each, every
// one but the last taken over by the next, the owner by the first; never
// session-unknown (the session is alive throughout).
TEST_F(ResumeRaceTest, FiftyConcurrentResumesOfALiveSessionLeaveExactlyOneHolder) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start());
  const int n = rounds();
  const auto t0 = Clock::now();
  for (int round = 0; round < n; ++round) {
    Race race;
    ASSERT_TRUE(open_session(gateway.port(), race)) << "round " << round << ", " << fate(gateway);
    ASSERT_TRUE(connect_racers(gateway.port(), race)) << "round " << round << ", " << fate(gateway);
    send_resumes(race, [](int) { return kOwnerFrames; });
    pump(
        race.everyone(), [&] { return race.settled(true, 1); }, after(kRoundWait));
    ASSERT_TRUE(in_round(round, one_holder_left(race, race.tally()), race, gateway));
    ASSERT_TRUE(survivor_holds_whole_session(gateway.port(), race, *race.survivor()))
        << "round " << round << ", " << fate(gateway);
    close_all(race);
  }
  note_summary(std::to_string(n) + " rounds x " + std::to_string(kRacers) +
               " racers, one holder each, in " + std::to_string(ms_since(t0)) + " ms");
  expect_clean_end(gateway);
}

// Scenario 2. The owner's FLUX_BYE races the resumes; it is written at a
// different place among the 50 RESUME writes each round. In a serial order
// either the BYE comes first (owner: FLUX_BYE; the session has ended, so
// every racer: session-unknown), or a resume does (owner: taken over, and
// its BYE, read in CLOSING, is discarded; the session never ends, so every
// racer: READY, one holder left). Nothing in between is possible.
TEST_F(ResumeRaceTest, ResumesRacingTheOwnersByeEndAllOrNothing) {
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start());
  const int n = rounds();
  int bye_first_rounds = 0;
  const auto t0 = Clock::now();
  for (int round = 0; round < n; ++round) {
    Race race;
    ASSERT_TRUE(open_session(gateway.port(), race)) << "round " << round << ", " << fate(gateway);
    ASSERT_TRUE(connect_racers(gateway.port(), race)) << "round " << round << ", " << fate(gateway);
    const int bye_at = round % (kRacers + 1);
    send_resumes(
        race, [](int) { return kOwnerFrames; },
        [&](int i) {
          if (i == bye_at) race.owner.client.send_available(encode_frame(kByeFrame));
        });
    pump(
        race.everyone(), [&] { return race.settled(true, 1); }, after(kRoundWait));
    bool bye_first = false;
    ASSERT_TRUE(in_round(round, bye_race_verdict(race, race.tally(), &bye_first), race, gateway));
    if (bye_first) {
      ASSERT_TRUE(session_gone(gateway.port(), race.id, kOwnerFrames))
          << "round " << round << ", " << fate(gateway);
      ++bye_first_rounds;
    } else {
      ASSERT_TRUE(survivor_holds_whole_session(gateway.port(), race, *race.survivor()))
          << "round " << round << ", " << fate(gateway);
    }
    close_all(race);
  }
  note_summary(std::to_string(n) + " rounds: BYE first " + std::to_string(bye_first_rounds) +
               ", a resume first " + std::to_string(n - bye_first_rounds) + ", in " +
               std::to_string(ms_since(t0)) + " ms");
  expect_clean_end(gateway);
}

// Scenario 3. The owner drops abruptly (RST) and the racers resume at a
// different offset (0-60 ms) around the end of a 30 ms resume window. A
// resume before the expiry attaches the session, which stops its window:
// then every racer gets READY, one holder left. Otherwise it expired: every
// racer gets session-unknown. No other mix exists in a serial order.
TEST_F(ResumeRaceTest, ResumesRacingExpiryEndAllOrNothing) {
  constexpr auto kWindow = milliseconds(30);
  constexpr int kOffsets = 13;  // 0, 5, ... 60 ms after the drop
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--resume-window", std::to_string(kWindow.count()) + "ms"}));
  const int n = rounds(4);
  int expired_rounds = 0;
  const auto t0 = Clock::now();
  for (int round = 0; round < n; ++round) {
    Race race;
    ASSERT_TRUE(open_session(gateway.port(), race)) << "round " << round << ", " << fate(gateway);
    ASSERT_TRUE(connect_racers(gateway.port(), race)) << "round " << round << ", " << fate(gateway);
    const auto dropped = Clock::now();
    race.owner.client.reset();
    // Schedules the racers at an offset from the drop; waits for nothing.
    std::this_thread::sleep_until(dropped + milliseconds(5 * (round % kOffsets)));
    send_resumes(race, [](int) { return kOwnerFrames; });
    std::vector<Peer*> racers;
    for (auto& r : race.racers) racers.push_back(&r);
    pump(
        racers, [&] { return race.settled(false, 1); }, after(kRoundWait));
    bool expired = false;
    ASSERT_TRUE(in_round(round, expiry_race_verdict(race.tally(), &expired), race, gateway));
    if (expired) {
      ASSERT_TRUE(session_gone(gateway.port(), race.id, kOwnerFrames))
          << "round " << round << ", " << fate(gateway);
      ++expired_rounds;
    } else {
      ASSERT_TRUE(survivor_holds_whole_session(gateway.port(), race, *race.survivor()))
          << "round " << round << ", " << fate(gateway);
    }
    close_all(race);
  }
  note_summary(std::to_string(n) + " rounds: resumed before expiry " +
               std::to_string(n - expired_rounds) + ", expired first " +
               std::to_string(expired_rounds) + ", in " + std::to_string(ms_since(t0)) + " ms");
  expect_clean_end(gateway);
}

// Scenario 4. --replay-frames 2 and seq 5: a resume with last-seq 0 is a
// replay gap, which discards the session (section 8) and closes whoever
// holds it with session-taken-over (decision 11). Five racers per round ask
// with last-seq 0, the others with 5. In a serial order: the last-seq-5
// resumes before the first gap get READY, each taken over by the next; the
// first gap gets replay-gap and ends the session; everything after it gets
// session-unknown. So: exactly one replay-gap (a last-seq-0 racer), no
// READY for last-seq 0, every READY taken over, nobody left holding it.
TEST_F(ResumeRaceTest, ResumesRacingAReplayGapLeaveNoHolder) {
  constexpr int kGapEvery = 10;
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start({"--replay-frames", "2"}));
  const int n = rounds();
  int ready_before_gap = 0;
  const auto t0 = Clock::now();
  for (int round = 0; round < n; ++round) {
    Race race;
    ASSERT_TRUE(open_session(gateway.port(), race)) << "round " << round << ", " << fate(gateway);
    ASSERT_TRUE(connect_racers(gateway.port(), race)) << "round " << round << ", " << fate(gateway);
    const auto asks_gap = [&](int i) { return i % kGapEvery == round % kGapEvery; };
    send_resumes(race, [&](int i) { return asks_gap(i) ? 0 : kOwnerFrames; });
    pump(
        race.everyone(), [&] { return race.settled(true, 0); }, after(kRoundWait));
    const Tally t = race.tally();
    ASSERT_TRUE(in_round(round, gap_race_verdict(race, t, asks_gap), race, gateway));
    ready_before_gap += t[Outcome::kTakenOver];
    // FLUX_INVALID leaves the connection in HANDSHAKE.
    for (auto& r : race.racers) {
      if (classify(r, race.ready()) != Outcome::kReplayGap) continue;
      ASSERT_TRUE(r.client.handshake()) << "round " << round << ": after replay-gap"
                                        << ", " << fate(gateway);
    }
    ASSERT_TRUE(session_gone(gateway.port(), race.id, kOwnerFrames))
        << "round " << round << ", " << fate(gateway);
    close_all(race);
  }
  note_summary(std::to_string(n) + " rounds: " + std::to_string(ready_before_gap) +
               " READY before the gap (all taken over), in " + std::to_string(ms_since(t0)) +
               " ms");
  expect_clean_end(gateway);
}

// Scenario 5. SIGTERM is sent at a different place among the 50 RESUME
// writes each round (one gateway per round): every connection gets an
// answer shutdown_transcript_ok allows, one holder at shutdown, exit 0.
TEST_F(ResumeRaceTest, ResumesRacingShutdownAnswerEveryoneAndExitZero) {
  const int n = rounds(4);
  std::map<int, int> rounds_by_readies;  // racers that got READY -> rounds
  const auto t0 = Clock::now();
  for (int round = 0; round < n; ++round) {
    GatewayProcess gateway;
    ASSERT_TRUE(gateway.start({"--linger", "2s"})) << "round " << round;
    Race race;
    ASSERT_TRUE(open_session(gateway.port(), race)) << "round " << round << ", " << fate(gateway);
    ASSERT_TRUE(connect_racers(gateway.port(), race)) << "round " << round << ", " << fate(gateway);
    const int term_at = (round * 7) % (kRacers + 1);
    send_resumes(
        race, [](int) { return kOwnerFrames; },
        [&](int i) {
          if (i == term_at) gateway.signal(SIGTERM);
        });
    const auto all = race.everyone();
    const auto all_closed = [&] {
      return std::all_of(all.begin(), all.end(), [](Peer* p) { return p->closed(); });
    };
    pump(all, all_closed, after(kRoundWait));
    int readies = 0;
    ASSERT_TRUE(in_round(round, shutdown_race_verdict(race, &readies), race, gateway));
    ++rounds_by_readies[readies];
    close_all(race);
    const auto status = gateway.wait_exit(after(kExitWait));
    ASSERT_TRUE(status.has_value()) << "round " << round << ": no exit after SIGTERM";
    ASSERT_TRUE(status->success()) << "round " << round << ": " << status->to_string();
  }
  std::string mix;
  for (const auto& [readies, rounds_seen] : rounds_by_readies) {
    mix += ' ';  // (not " " + ...: GCC 12 warns a false -Wrestrict)
    mix += std::to_string(readies) + ":" + std::to_string(rounds_seen);
  }
  note_summary(std::to_string(n) + " gateways; racers READY before shutdown:rounds" + mix +
               ", in " + std::to_string(ms_since(t0)) + " ms");
}

}  // namespace
}  // namespace flux::itest
