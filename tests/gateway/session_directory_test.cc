// SessionDirectory: the ownership rule of a reactor group (a session id is
// claimed once, by one reactor, and released only by that reactor), also
// when reactors race for one id on several threads.

#include "gateway/session_directory.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace flux {
namespace {

constexpr std::string_view kId = "0123456789abcdef0123456789abcdef";
constexpr std::string_view kOtherId = "fedcba9876543210fedcba9876543210";

TEST(SessionDirectoryTest, AClaimedIdNamesItsOwner) {
  SessionDirectory directory;
  EXPECT_EQ(directory.owner(kId), std::nullopt);
  ASSERT_TRUE(directory.claim(kId, 3));
  EXPECT_EQ(directory.owner(kId), 3u);
  EXPECT_EQ(directory.owner(kOtherId), std::nullopt);
}

TEST(SessionDirectoryTest, AnIdIsClaimedOnceWhoeverAsks) {
  SessionDirectory directory;
  ASSERT_TRUE(directory.claim(kId, 0));
  EXPECT_FALSE(directory.claim(kId, 1)) << "another reactor";
  EXPECT_FALSE(directory.claim(kId, 0)) << "the owner itself";
  EXPECT_EQ(directory.owner(kId), 0u) << "a refused claim changes nothing";
}

TEST(SessionDirectoryTest, OnlyTheOwnerReleases) {
  SessionDirectory directory;
  ASSERT_TRUE(directory.claim(kId, 0));
  directory.release(kId, 1);
  EXPECT_EQ(directory.owner(kId), 0u);
  directory.release(kId, 0);
  EXPECT_EQ(directory.owner(kId), std::nullopt);
  directory.release(kId, 0);  // releasing what is not there is harmless
  EXPECT_TRUE(directory.claim(kId, 1)) << "free again once released";
  EXPECT_EQ(directory.owner(kId), 1u);
}

TEST(SessionDirectoryTest, RacingClaimsHaveExactlyOneWinner) {
  SessionDirectory directory;
  constexpr unsigned kReactors = 4;
  constexpr int kIds = 200;
  std::vector<std::string> ids;
  for (int i = 0; i < kIds; ++i) ids.push_back(std::string(28, '0') + std::to_string(1000 + i));
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (unsigned reactor = 0; reactor < kReactors; ++reactor)
    threads.emplace_back([&, reactor] {
      for (const std::string& id : ids)
        if (directory.claim(id, reactor)) wins.fetch_add(1);
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wins.load(), kIds);
  for (const std::string& id : ids) EXPECT_TRUE(directory.owner(id).has_value());
}

}  // namespace
}  // namespace flux
