// Reactor in-process, driven on the test's thread through socketpairs (as
// the fuzzer does): the loop serves connections, admission refuses past
// --max-connections, /connections rows describe what is open, post() runs
// tasks on the loop from any thread, shutdown drains every connection, and
// a resume that lands on another reactor of the mesh is handed to the
// session's owner (docs/protocol.md sections 5 and 7).

#include "gateway/reactor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/gateway/reactor_driver.h"

namespace flux {
namespace {

using namespace std::chrono_literals;
using testing::closed_count;
using testing::PairClient;
using testing::quick_options;
using testing::ready_session_id;
using testing::turn_until;

TEST(ReactorTest, ServesAConnectionFromHelloToBye) {
  Reactor reactor(quick_options());
  PairClient client(reactor);
  ASSERT_TRUE(client.valid());
  EXPECT_EQ(reactor.connection_count(), 1u);

  client.send("FLUX_HELLO 1");
  EXPECT_NE(ready_session_id(client.receive({&reactor})), "");
  client.send("abc");
  EXPECT_EQ(client.receive({&reactor}), "abc");
  client.send("FLUX_BYE");
  EXPECT_EQ(client.receive({&reactor}), "FLUX_BYE");
  EXPECT_TRUE(client.sees_eof({&reactor}));
  client.close();
  EXPECT_TRUE(turn_until({&reactor}, [&] { return reactor.connection_count() == 0; }));
  EXPECT_EQ(closed_count(reactor, CloseReason::kBye), 1u);
}

TEST(ReactorTest, ListsEveryOpenConnection) {
  Reactor reactor(quick_options(), "7");
  PairClient ready(reactor), waiting(reactor);
  ready.send("FLUX_HELLO");
  ASSERT_NE(ready_session_id(ready.receive({&reactor})), "");

  std::vector<ConnectionInfo> rows = reactor.list_connections();
  ASSERT_EQ(rows.size(), 2u);
  int ready_rows = 0, handshake_rows = 0;
  for (const ConnectionInfo& row : rows) {
    EXPECT_EQ(row.reactor, "7");
    if (row.state == "ready") {
      ++ready_rows;
      EXPECT_EQ(row.bytes_in, 4u + 10u);  // the HELLO frame
      EXPECT_GT(row.bytes_out, 0u);
    }
    if (row.state == "handshake") ++handshake_rows;
  }
  EXPECT_EQ(ready_rows, 1);
  EXPECT_EQ(handshake_rows, 1);
}

TEST(ReactorTest, RefusesPastMaxConnectionsAndAdmitsAgainOnceOneCloses) {
  Options options = quick_options();
  options.max_connections = 1;
  Reactor reactor(options);
  PairClient first(reactor);
  PairClient refused(reactor);
  EXPECT_EQ(refused.receive({&reactor}), "FLUX_ERROR server-full");
  EXPECT_TRUE(refused.sees_eof({&reactor}));
  EXPECT_EQ(reactor.connection_count(), 1u);
  EXPECT_EQ(closed_count(reactor, CloseReason::kServerFull), 1u);

  first.close();
  ASSERT_TRUE(turn_until({&reactor}, [&] { return reactor.connection_count() == 0; }));
  PairClient next(reactor);
  next.send("FLUX_HELLO");
  EXPECT_NE(ready_session_id(next.receive({&reactor})), "") << "the slot was given back";
}

TEST(ReactorTest, PostRunsTasksOnTheLoopInOrder) {
  Reactor reactor(quick_options());
  std::vector<int> ran;
  std::atomic<bool> posted{false};
  const auto loop_thread = std::this_thread::get_id();
  bool on_loop_thread = true;
  std::thread other([&] {
    for (int i = 0; i < 3; ++i)
      reactor.post([&, i] {
        on_loop_thread = on_loop_thread && std::this_thread::get_id() == loop_thread;
        ran.push_back(i);
      });
    posted = true;
  });
  other.join();
  ASSERT_TRUE(posted);
  EXPECT_TRUE(turn_until({&reactor}, [&] { return ran.size() == 3; }));
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(on_loop_thread);
}

TEST(ReactorTest, ShutdownTellsEveryConnectionAndRunReturnsOnceDrained) {
  Reactor reactor(quick_options());
  PairClient ready(reactor), waiting(reactor);
  ready.send("FLUX_HELLO");
  ASSERT_NE(ready_session_id(ready.receive({&reactor})), "");

  reactor.request_shutdown();
  reactor.run();  // returns once both have closed (their linger is 200 ms)
  EXPECT_EQ(reactor.connection_count(), 0u);
  EXPECT_EQ(ready.receive({}), "FLUX_ERROR server-shutdown");
  EXPECT_EQ(waiting.receive({}), "FLUX_ERROR server-shutdown");
  EXPECT_EQ(closed_count(reactor, CloseReason::kShutdown), 2u);
}

TEST(ReactorTest, ListensOnLoopbackAndServesTcpClients) {
  Reactor reactor(quick_options());
  std::string error;
  ASSERT_TRUE(reactor.listen(error)) << error;
  ASSERT_NE(reactor.port(), 0);
  EXPECT_EQ(reactor.metrics().connections.accepted_total.get(), 0u);
  // The listener itself is tested in listener_test.cc; here, that the
  // reactor serves what it accepts.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(reactor.port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  EXPECT_TRUE(turn_until({&reactor}, [&] { return reactor.connection_count() == 1; }));
  EXPECT_EQ(reactor.metrics().connections.accepted_total.get(), 1u);
  ::close(fd);
}

// Sessions never move: a resume on another reactor moves the connection to
// the session's owner, which answers it with the replay.
TEST(ReactorTest, HandsAResumeToTheReactorThatOwnsTheSession) {
  const Options options = quick_options();
  ReactorMesh mesh;
  Reactor owner(options, 0, mesh), other(options, 1, mesh);
  mesh.members = {&owner, &other};

  PairClient first(owner);
  first.send("FLUX_HELLO");
  const std::string id = ready_session_id(first.receive({&owner, &other}));
  ASSERT_NE(id, "");
  first.send("one");
  ASSERT_EQ(first.receive({&owner, &other}), "one");
  first.close();
  ASSERT_TRUE(turn_until({&owner, &other}, [&] { return owner.connection_count() == 0; }));

  PairClient second(other);
  second.send("FLUX_RESUME " + id + " 0");
  EXPECT_EQ(second.receive({&owner, &other}), "FLUX_READY " + id + " 1");
  EXPECT_EQ(second.receive({&owner, &other}), "one") << "replayed by the owner";
  EXPECT_EQ(owner.connection_count(), 1u);
  EXPECT_EQ(other.connection_count(), 0u);
  EXPECT_EQ(mesh.admitted.load(), 1u) << "moved, counted once";
  second.send("two");
  EXPECT_EQ(second.receive({&owner, &other}), "two");
}

}  // namespace
}  // namespace flux
