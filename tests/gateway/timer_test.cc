// Timer and CommonTimeout on a real libevent base.
//
// These are the only unit tests that wait on the wall clock: what is under
// test is libevent's own timer queue, which reads the system's monotonic
// clock, so there is no clock to inject. Every wait is bounded by a guard
// timer, so a timer that never fires makes a test fail, never hang.
//
// libevent reads CLOCK_MONOTONIC_COARSE unless a base asks for
// EVENT_BASE_FLAG_PRECISE_TIMER (the gateway's does not). That clock lags
// steady_clock by up to one tick, so a deadline it computes may fall up to one
// tick early by steady_clock's reckoning: lower bounds below allow that tick.

#include "gateway/timer.h"

#include <event2/event.h>
#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <functional>
#include <memory>
#include <numeric>
#include <vector>

#include "gateway/libevent_ptr.h"

namespace flux {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr Millis kTimeout = 50ms;

Clock::duration coarse_tick() {
  timespec res{};
  if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) != 0) return 0ms;
  return std::chrono::seconds(res.tv_sec) + std::chrono::nanoseconds(res.tv_nsec);
}

// The least time a timer of `duration` may take to fire, by steady_clock.
Clock::duration at_least(Millis duration) {
  return duration - coarse_tick();
}

timeval to_timeval(Clock::duration d) {
  const auto us =
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(us / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1'000'000);
  return tv;
}

// Callbacks run one at a time: a running count orders them exactly, even
// when a loaded machine makes several fire in the same loop iteration.
int g_callbacks_run = 0;

// What a timer callback saw.
struct Fired {
  int count = 0;
  short what = 0;
  Clock::time_point at{};
  int sequence = 0;  // value of g_callbacks_run when it last fired
};

void record_fire(evutil_socket_t, short what, void* arg) {
  auto* fired = static_cast<Fired*>(arg);
  ++fired->count;
  fired->what = what;
  fired->at = Clock::now();
  fired->sequence = ++g_callbacks_run;
}

void do_nothing(evutil_socket_t, short, void*) {}

class TimerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(base_);
    ASSERT_TRUE(guard_);
  }

  // Runs the loop until done() or `budget` has passed.
  void run_until(const std::function<bool()>& done, Clock::duration budget) {
    const auto deadline = Clock::now() + budget;
    while (!done() && Clock::now() < deadline) {
      timeval left = to_timeval(deadline - Clock::now());
      evtimer_add(guard_.get(), &left);  // wakes EVLOOP_ONCE if nothing else does
      event_base_loop(base_.get(), EVLOOP_ONCE);
    }
    evtimer_del(guard_.get());
  }

  // Runs the loop for `span`, whatever fires meanwhile.
  void run_for(Millis span) {
    timeval tv = to_timeval(span);
    event_base_loopexit(base_.get(), &tv);
    event_base_dispatch(base_.get());
  }

  EventBasePtr base_{event_base_new()};
  EventPtr guard_{evtimer_new(base_.get(), do_nothing, nullptr)};
};

// ------------------------------------------------------------------- firing

TEST_F(TimerTest, FiresOnceAfterItsDuration) {
  CommonTimeout timeout(base_.get(), kTimeout);
  ASSERT_TRUE(timeout.enabled());
  Fired fired;
  Timer timer(base_.get(), record_fire, &fired);
  EXPECT_FALSE(timer.pending());

  const auto start = Clock::now();
  timer.arm(timeout);
  EXPECT_TRUE(timer.pending());
  run_until([&] { return fired.count > 0; }, 5s);

  ASSERT_EQ(fired.count, 1) << "did not fire within 5 s";
  EXPECT_GE(fired.at - start, at_least(kTimeout));
  EXPECT_TRUE(fired.what & EV_TIMEOUT);
  EXPECT_FALSE(timer.pending());

  run_for(150ms);
  EXPECT_EQ(fired.count, 1) << "a Timer is one-shot";
}

TEST_F(TimerTest, WholeSecondsAreKept) {
  // The default timeouts are seconds long; only their sub-second part would
  // show in the 50 ms tests. 1050 ms must not fire within 200 ms.
  CommonTimeout timeout(base_.get(), 1050ms);
  Fired fired;
  Timer timer(base_.get(), record_fire, &fired);
  timer.arm(timeout);
  run_for(200ms);
  EXPECT_EQ(fired.count, 0);
  EXPECT_TRUE(timer.pending());
}

TEST_F(TimerTest, CanBeArmedAgainAfterFiring) {
  CommonTimeout timeout(base_.get(), kTimeout);
  Fired fired;
  Timer timer(base_.get(), record_fire, &fired);
  for (int round = 1; round <= 3; ++round) {
    const auto start = Clock::now();
    timer.arm(timeout);
    run_until([&] { return fired.count == round; }, 5s);
    ASSERT_EQ(fired.count, round);
    EXPECT_GE(fired.at - start, at_least(kTimeout)) << "round " << round;
  }
}

TEST_F(TimerTest, RearmingBeforeExpiryPushesTheDeadlineBack) {
  CommonTimeout timeout(base_.get(), kTimeout);
  Fired fired;
  Timer timer(base_.get(), record_fire, &fired);

  // Re-arm every 10 ms for twice the timeout. Had a re-arm kept the first
  // deadline, the timer would fire about 10 ms after some re-arm. Whenever it
  // fires, a full timeout must have passed since the latest arm: this holds
  // even if a stalled machine lets more than 50 ms slip between two re-arms.
  const auto first_arm = Clock::now();
  auto last_arm = first_arm;
  timer.arm(timeout);
  int rearms = 0;
  while (fired.count == 0 && Clock::now() - first_arm < 2 * kTimeout) {
    run_for(10ms);
    if (fired.count > 0) break;
    last_arm = Clock::now();
    timer.arm(timeout);
    ++rearms;
    EXPECT_TRUE(timer.pending());
  }
  run_until([&] { return fired.count > 0; }, 5s);
  ASSERT_EQ(fired.count, 1);
  EXPECT_GE(fired.at - last_arm, at_least(kTimeout))
      << "fired " << (fired.at - last_arm) / 1us << " us after the latest of " << rearms
      << " re-arms";
  EXPECT_GT(rearms, 0);
}

// --------------------------------------------------------------- cancelling

TEST_F(TimerTest, CancelPreventsFiring) {
  CommonTimeout timeout(base_.get(), kTimeout);
  Fired fired;
  Timer timer(base_.get(), record_fire, &fired);
  timer.arm(timeout);
  ASSERT_TRUE(timer.pending());
  timer.cancel();
  EXPECT_FALSE(timer.pending());

  const auto start = Clock::now();
  run_for(150ms);
  EXPECT_GE(Clock::now() - start, at_least(150ms)) << "the guard really let the loop run";
  EXPECT_EQ(fired.count, 0);
}

TEST_F(TimerTest, CancelIsHarmlessWhenIdleAndArmWorksAfterIt) {
  CommonTimeout timeout(base_.get(), kTimeout);
  Fired fired;
  Timer timer(base_.get(), record_fire, &fired);
  timer.cancel();
  timer.cancel();
  EXPECT_FALSE(timer.pending());
  timer.arm(timeout);
  timer.cancel();
  timer.arm(timeout);
  run_until([&] { return fired.count > 0; }, 5s);
  EXPECT_EQ(fired.count, 1);
}

TEST_F(TimerTest, DestroyingAPendingTimerRemovesIt) {
  CommonTimeout timeout(base_.get(), kTimeout);
  Fired fired;
  auto timer = std::make_unique<Timer>(base_.get(), record_fire, &fired);
  timer->arm(timeout);
  timer.reset();  // its callback must never run (it would touch freed state)
  run_for(150ms);
  EXPECT_EQ(fired.count, 0);
}

// --------------------------------------------------------- disabled timeout

TEST_F(TimerTest, ZeroDurationIsDisabledAndNeverFires) {
  CommonTimeout never(base_.get(), 0ms);
  EXPECT_FALSE(never.enabled());
  EXPECT_FALSE(CommonTimeout().enabled());
  EXPECT_FALSE(CommonTimeout(base_.get(), Millis{-5}).enabled());

  Fired fired;
  Timer timer(base_.get(), record_fire, &fired);
  timer.arm(never);
  EXPECT_FALSE(timer.pending());
  run_for(150ms);
  EXPECT_EQ(fired.count, 0);
}

TEST_F(TimerTest, ArmingADisabledTimeoutCancelsAPendingTimer) {
  // A connection moving to a state whose timeout is off (--idle-timeout 0)
  // must not keep the previous state's deadline.
  CommonTimeout timeout(base_.get(), kTimeout);
  CommonTimeout never(base_.get(), 0ms);
  Fired fired;
  Timer timer(base_.get(), record_fire, &fired);
  timer.arm(timeout);
  ASSERT_TRUE(timer.pending());
  timer.arm(never);
  EXPECT_FALSE(timer.pending());
  run_for(150ms);
  EXPECT_EQ(fired.count, 0);
}

// ------------------------------------------------------------------ ordering

struct Slot {
  std::vector<int>* order;
  int index;
};

void record_order(evutil_socket_t, short, void* arg) {
  auto* slot = static_cast<Slot*>(arg);
  slot->order->push_back(slot->index);
}

TEST_F(TimerTest, TenThousandTimersOnOneTimeoutFireInArmOrder) {
  constexpr int kTimers = 10'000;
  CommonTimeout timeout(base_.get(), kTimeout);
  std::vector<int> fired;
  fired.reserve(kTimers);
  std::vector<Slot> slots(kTimers);
  std::vector<std::unique_ptr<Timer>> timers;
  for (int i = 0; i < kTimers; ++i) {
    slots[static_cast<size_t>(i)] = {&fired, i};
    timers.push_back(
        std::make_unique<Timer>(base_.get(), record_order, &slots[static_cast<size_t>(i)]));
  }

  // Arm in an order unrelated to creation (7919 is coprime with 10,000), then
  // re-arm the first 100 armed: re-arming sends a timer to the back of the queue.
  std::vector<int> arm_order(kTimers);
  for (int i = 0; i < kTimers; ++i) arm_order[static_cast<size_t>(i)] = (i * 7919) % kTimers;
  const auto start = Clock::now();
  for (int index : arm_order) timers[static_cast<size_t>(index)]->arm(timeout);
  for (int i = 0; i < 100; ++i)
    timers[static_cast<size_t>(arm_order[static_cast<size_t>(i)])]->arm(timeout);

  std::vector<int> expected(arm_order.begin() + 100, arm_order.end());
  expected.insert(expected.end(), arm_order.begin(), arm_order.begin() + 100);

  run_until([&] { return fired.size() == static_cast<size_t>(kTimers); }, 10s);
  EXPECT_GE(Clock::now() - start, at_least(kTimeout));

  ASSERT_EQ(fired.size(), static_cast<size_t>(kTimers));
  EXPECT_TRUE(fired == expected)
      << "first out-of-order position: "
      << std::mismatch(fired.begin(), fired.end(), expected.begin()).first - fired.begin();
  for (const auto& t : timers) EXPECT_FALSE(t->pending());
}

TEST_F(TimerTest, EachDurationIsItsOwnQueue) {
  CommonTimeout short_timeout(base_.get(), kTimeout);
  CommonTimeout long_timeout(base_.get(), 2 * kTimeout);
  Fired armed_first_on_long, armed_second_on_short;
  Timer a(base_.get(), record_fire, &armed_first_on_long);
  Timer b(base_.get(), record_fire, &armed_second_on_short);

  const auto start = Clock::now();
  a.arm(long_timeout);
  b.arm(short_timeout);
  run_until([&] { return armed_first_on_long.count > 0 && armed_second_on_short.count > 0; }, 5s);

  ASSERT_EQ(armed_first_on_long.count, 1);
  ASSERT_EQ(armed_second_on_short.count, 1);
  EXPECT_LT(armed_second_on_short.sequence, armed_first_on_long.sequence)
      << "the shorter timeout fires first";
  EXPECT_GE(armed_second_on_short.at - start, at_least(kTimeout));
  EXPECT_GE(armed_first_on_long.at - start, at_least(2 * kTimeout));
}

TEST_F(TimerTest, MovingATimerToAnotherTimeoutReplacesItsDeadline) {
  // A connection's single timer moves handshake -> idle -> linger: only the
  // latest arm counts, whichever queue it was on before.
  CommonTimeout long_timeout(base_.get(), 4 * kTimeout);
  CommonTimeout middle_timeout(base_.get(), 2 * kTimeout);
  CommonTimeout short_timeout(base_.get(), kTimeout);
  Fired moved, reference;
  Timer timer(base_.get(), record_fire, &moved);
  Timer yardstick(base_.get(), record_fire, &reference);

  const auto start = Clock::now();
  timer.arm(long_timeout);
  timer.arm(short_timeout);
  yardstick.arm(middle_timeout);  // fires between the short and the long deadline
  run_until([&] { return moved.count > 0 && reference.count > 0; }, 5s);

  ASSERT_EQ(moved.count, 1);
  ASSERT_EQ(reference.count, 1);
  EXPECT_GE(moved.at - start, at_least(kTimeout));
  EXPECT_LT(moved.sequence, reference.sequence) << "still on the long timeout's queue";
  run_for(4 * kTimeout);
  EXPECT_EQ(moved.count, 1) << "the long deadline was replaced, not added";
}

}  // namespace
}  // namespace flux
