#include "kp/throttle.h"

#include <gtest/gtest.h>

#include <set>

namespace hpcs {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using namespace std::chrono_literals;

RetryPolicy Policy(bool jitter = true) {
  RetryPolicy p;
  p.base = milliseconds(250);
  p.cap = seconds(5);
  p.jitter = jitter;
  return p;
}

const Clock::time_point kT0 = Clock::time_point() + seconds(1000);

TEST(HostThrottleTest, UnlimitedUntilTheFirstOverload) {
  HostThrottle t;
  EXPECT_TRUE(t.MayStart(kT0, 0));
  EXPECT_TRUE(t.MayStart(kT0, 5000));
  HostThrottle capped(4);
  EXPECT_TRUE(capped.MayStart(kT0, 3));
  EXPECT_FALSE(capped.MayStart(kT0, 4));
}

TEST(HostThrottleTest, AnOverloadHoldsEveryRequestAndNarrowsTheWindowToOne) {
  HostThrottle t;
  t.OnOverload(kT0, kT0 - 1ms, 16, 1L, Policy(), 0);
  // Retry-After 1 with the lowest draw: exactly one second.
  EXPECT_EQ(t.hold_until(), kT0 + seconds(1));
  EXPECT_FALSE(t.MayStart(kT0 + milliseconds(999), 0));
  EXPECT_EQ(t.window(), 1u);
  EXPECT_TRUE(t.MayStart(t.hold_until(), 0));
  EXPECT_FALSE(t.MayStart(t.hold_until(), 1));
}

TEST(HostThrottleTest, AnswersFromTheSameBurstAreOneOverload) {
  HostThrottle t;
  t.OnOverload(kT0, kT0 - 1ms, 16, 1L, Policy(), 0);
  // Fifteen more 429s, and seven successes, for requests sent before it.
  for (int i = 0; i < 15; ++i) {
    t.OnOverload(kT0 + milliseconds(i), kT0 - 1ms, 15 - i, 1L, Policy(), 0);
  }
  for (int i = 0; i < 7; ++i) t.OnSuccess(kT0 - 1ms);
  EXPECT_EQ(t.window(), 1u);
  EXPECT_EQ(t.overloads(), 1);
  // Counted from the first of them: Retry-After 1, lowest draw.
  EXPECT_EQ(t.hold_until(), kT0 + seconds(1));
}

TEST(HostThrottleTest, EveryRefusalOfABurstWidensTheSpreadUpToEightFold) {
  // The highest draw for each spread (random % (spread + 1) == spread): one
  // refusal spreads over [1, 2] s; eight or more over [1, 1 + 8] s, counted
  // from the first refusal.
  HostThrottle one;
  one.OnOverload(kT0, kT0, 8, 1L, Policy(), 1000);
  EXPECT_EQ(one.hold_until(), kT0 + seconds(2));
  HostThrottle many;
  many.OnOverload(kT0, kT0, 16, 1L, Policy(), 8000);
  for (int i = 1; i < 16; ++i) {
    many.OnOverload(kT0 + milliseconds(i), kT0 - 1ms, 16 - i, 1L, Policy(), 8000);
  }
  EXPECT_EQ(many.hold_until(), kT0 + seconds(9));
  EXPECT_EQ(many.overloads(), 1);
}

TEST(HostThrottleTest, OverloadsInARowSpreadFurtherWithinTheCap) {
  HostThrottle t;
  Clock::time_point now = kT0;
  // Retry-After 1; the largest spreads (no jitter): 1, 2, 4 s, then the
  // policy's cap of 5 s, on top of the Retry-After... without jitter the
  // hold is the larger of the two: 1, 2, 4, 5, 5 s.
  const int want_s[] = {1, 2, 4, 5, 5};
  for (int expected : want_s) {
    t.OnOverload(now, now, 1, 1L, Policy(false), 0);
    EXPECT_EQ(t.hold_until() - now, seconds(expected));
    now = t.hold_until();
  }
  EXPECT_EQ(t.overloads(), 5);
  // With jitter, within [Retry-After, Retry-After + cap].
  for (uint32_t r = 0; r < 50'000; r += 977) {
    t.OnOverload(now, now, 1, 1L, Policy(), r);
    EXPECT_GE(t.hold_until() - now, seconds(1));
    EXPECT_LE(t.hold_until() - now, seconds(6));
    now = t.hold_until();
  }
}

TEST(HostThrottleTest, JitterSpreadsHostsAcrossTheInterval) {
  std::set<long long> holds;
  for (uint32_t r = 0; r < 100'000; r += 1013) {
    HostThrottle t;
    t.OnOverload(kT0, kT0, 8, 2L, Policy(), r * 2654435761u);
    auto d = std::chrono::duration_cast<milliseconds>(t.hold_until() - kT0);
    EXPECT_GE(d, seconds(2));
    EXPECT_LE(d, seconds(4));
    holds.insert(d.count() / 200);
  }
  EXPECT_GE(holds.size(), 8u);
}

TEST(HostThrottleTest, WithoutJitterEveryHostWaitsTheSame) {
  std::set<Clock::time_point> holds;
  for (uint32_t r : {0u, 777u, 0xffffffffu}) {
    HostThrottle t;
    t.OnOverload(kT0, kT0, 8, 2L, Policy(false), r);
    holds.insert(t.hold_until());
  }
  EXPECT_EQ(holds.size(), 1u);
}

TEST(HostThrottleTest, EachRoundOfSuccessesWidensTheWindowByOneUpToItsLimit) {
  HostThrottle t(4);
  t.OnOverload(kT0, kT0, 4, {}, Policy(), 0);
  EXPECT_EQ(t.window(), 1u);
  t.OnSuccess(kT0 + 1s);  // a round of one
  EXPECT_EQ(t.window(), 2u);
  EXPECT_EQ(t.overloads(), 0);
  t.OnSuccess(kT0 + 1s);
  EXPECT_EQ(t.window(), 2u);
  t.OnSuccess(kT0 + 1s);  // a round of two
  EXPECT_EQ(t.window(), 3u);
  for (int i = 0; i < 10; ++i) t.OnSuccess(kT0 + 1s);
  EXPECT_EQ(t.window(), 4u);
}

// A burst of eight refused at `now` (Retry-After 1): spread 8 s, and the
// highest draw for it (8000 % 8001), so the hold is 9 s.
void RefuseBurstOfEight(HostThrottle& t, Clock::time_point now) {
  t.OnOverload(now, now - 1ms, 8, 1L, Policy(), 8000);
  for (int i = 1; i < 8; ++i) {
    t.OnOverload(now + milliseconds(i), now - 1ms, 8 - i, 1L, Policy(), 8000);
  }
}

TEST(HostThrottleTest, AnOverloadInARowSpreadsNoNarrowerThanTheBurstBeforeIt) {
  HostThrottle t;
  RefuseBurstOfEight(t, kT0);
  ASSERT_EQ(t.hold_until(), kT0 + seconds(9));
  // The single request after the hold is refused too: its spread is the
  // burst's 8 s, not the 2 s that two overloads of one refusal would give.
  Clock::time_point probe = t.hold_until();
  t.OnOverload(probe + 50ms, probe, 1, 1L, Policy(false), 0);
  EXPECT_EQ(t.overloads(), 2);
  EXPECT_EQ(t.hold_until(), probe + 50ms + seconds(8));
}

TEST(HostThrottleTest, EachRoundOfSuccessesHalvesTheMemoryOfTheLastSpread) {
  HostThrottle t;
  RefuseBurstOfEight(t, kT0);
  Clock::time_point now = t.hold_until();
  t.OnSuccess(now);  // a round of one: window 2, memory 4 s
  t.OnSuccess(now);
  t.OnSuccess(now);  // a round of two: window 3, memory 2 s
  ASSERT_EQ(t.window(), 3u);
  ASSERT_EQ(t.overloads(), 0);
  // A new overload, one refusal, no jitter: the memory's 2 s, not the 1 s
  // of a first overload.
  now += 100ms;
  t.OnOverload(now, now, 3, 1L, Policy(false), 0);
  EXPECT_EQ(t.hold_until(), now + seconds(2));
  // Three more rounds (1 + 2 + 3 successes from window 1): 2 s -> 250 ms,
  // under the Retry-After's 1 s, which is the spread again.
  now = t.hold_until();
  for (int i = 0; i < 6; ++i) t.OnSuccess(now);
  ASSERT_EQ(t.window(), 4u);
  now += 100ms;
  t.OnOverload(now, now, 4, 1L, Policy(false), 0);
  EXPECT_EQ(t.hold_until(), now + seconds(1));
}

TEST(HostThrottleTest, AtItsLimitTheWindowStillCountsRoundsForTheMemory) {
  HostThrottle t(1);  // --max-parallel 1
  RefuseBurstOfEight(t, kT0);
  Clock::time_point now = t.hold_until();
  for (int i = 0; i < 3; ++i) t.OnSuccess(now);  // three rounds of one: 8 s -> 1 s
  EXPECT_EQ(t.window(), 1u);
  now += 100ms;
  t.OnOverload(now, now, 1, 1L, Policy(false), 0);
  EXPECT_EQ(t.hold_until(), now + seconds(1));
}

TEST(HostThrottleTest, NoRetryAfterStillHoldsForTheBase) {
  HostThrottle t;
  t.OnOverload(kT0, kT0, 2, {}, Policy(false), 0);
  EXPECT_EQ(t.hold_until(), kT0 + milliseconds(250));
}

}  // namespace
}  // namespace hpcs
