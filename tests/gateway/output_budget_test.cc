// OutputBudget: the arithmetic of --max-pending-total's share per reactor
// (who pauses, when everyone is relieved). The real bound over sockets is
// tests/integration/output_bounds_test.cc.

#include "gateway/output_budget.h"

#include <gtest/gtest.h>

namespace flux {
namespace {

TEST(OutputBudget, UnderTheLimitNobodyPauses) {
  OutputBudget budget(1000);
  budget.on_queue_change(0, 600);
  budget.on_queue_change(0, 400);
  EXPECT_EQ(budget.queued(), 1000u);
  EXPECT_FALSE(budget.should_pause(600));
  EXPECT_FALSE(budget.should_pause(400));
}

TEST(OutputBudget, OverTheLimitTheBiggestHoldersPauseFirst) {
  OutputBudget budget(1000);
  budget.on_queue_change(0, 900);  // a flooder
  budget.on_queue_change(0, 150);  // a client with a little in flight
  ASSERT_EQ(budget.queued(), 1050u);
  EXPECT_TRUE(budget.should_pause(900)) << "above the average (525): pauses";
  EXPECT_FALSE(budget.should_pause(150)) << "below the average, under the hard limit: goes on";
  EXPECT_FALSE(budget.should_pause(0)) << "holding nothing is never a reason to pause";
}

TEST(OutputBudget, PastTheHardLimitEveryHolderPauses) {
  OutputBudget budget(800);  // hard limit 900
  for (int i = 0; i < 9; ++i) budget.on_queue_change(0, 100);
  budget.on_queue_change(0, 10);
  ASSERT_EQ(budget.queued(), 910u);
  EXPECT_GT(budget.queued(), budget.hard_limit());
  EXPECT_TRUE(budget.should_pause(10)) << "below average, but the total is past the hard limit";
  EXPECT_FALSE(budget.should_pause(0));
}

TEST(OutputBudget, HoldersCountOnlyNonEmptyQueues) {
  OutputBudget budget(100);
  budget.on_queue_change(0, 200);
  budget.on_queue_change(0, 1);
  budget.on_queue_change(1, 0);  // the second one drained
  // One holder of 200 out of 200: it is the average, so it pauses.
  EXPECT_TRUE(budget.should_pause(200));
  budget.on_queue_change(200, 50);  // partly written
  EXPECT_EQ(budget.queued(), 50u);
  EXPECT_FALSE(budget.should_pause(50));
}

TEST(OutputBudget, ReliefComesAtThreeQuartersNotAtTheLine) {
  OutputBudget budget(1000);
  budget.on_queue_change(0, 1200);
  budget.on_pause();
  EXPECT_FALSE(budget.relieved());
  budget.on_queue_change(1200, 900);
  EXPECT_FALSE(budget.relieved()) << "under the limit but above 3/4: no flapping at the line";
  budget.on_queue_change(900, 750);
  EXPECT_TRUE(budget.relieved());
  EXPECT_EQ(budget.paused(), 1u);
  budget.on_resume();
  EXPECT_EQ(budget.paused(), 0u);
}

}  // namespace
}  // namespace flux
