#include "kp/retry.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <set>

namespace hpcs {
namespace {

using std::chrono::milliseconds;

TEST(RetryTest, RetryableStatuses) {
  EXPECT_TRUE(IsRetryableStatus(429));
  EXPECT_TRUE(IsRetryableStatus(500));
  EXPECT_TRUE(IsRetryableStatus(503));
  EXPECT_FALSE(IsRetryableStatus(501));
  EXPECT_FALSE(IsRetryableStatus(400));
  EXPECT_FALSE(IsRetryableStatus(401));
  EXPECT_FALSE(IsRetryableStatus(422));
}

TEST(RetryTest, ExponentialWithEqualJitterAndCap) {
  RetryPolicy p;
  p.base = milliseconds(100);
  p.cap = milliseconds(1000);
  // Lowest and highest random draws bound each step: [ceiling/2, ceiling].
  EXPECT_EQ(BackoffDelay(p, 1, {}, 0), milliseconds(50));
  EXPECT_EQ(BackoffDelay(p, 1, {}, 50), milliseconds(100));
  EXPECT_EQ(BackoffDelay(p, 2, {}, 0), milliseconds(100));
  EXPECT_EQ(BackoffDelay(p, 3, {}, 0), milliseconds(200));
  EXPECT_EQ(BackoffDelay(p, 10, {}, 0), milliseconds(500));
  EXPECT_EQ(BackoffDelay(p, 10, {}, 500), milliseconds(1000));
  EXPECT_LE(BackoffDelay(p, 60, {}, 0xffffffffu), milliseconds(1000));  // no overflow
  for (uint32_t r = 0; r < 1000; r += 7) {
    auto d = BackoffDelay(p, 2, {}, r);
    EXPECT_GE(d, milliseconds(100));
    EXPECT_LE(d, milliseconds(200));
  }
}

TEST(RetryTest, HonoursRetryAfterUpToCap) {
  RetryPolicy p;
  p.base = milliseconds(100);
  p.cap = milliseconds(5000);
  EXPECT_EQ(BackoffDelay(p, 1, 2L, 0), milliseconds(2000));
  EXPECT_EQ(BackoffDelay(p, 1, 60L, 0), milliseconds(5000));
  EXPECT_EQ(BackoffDelay(p, 1, 0L, 0), milliseconds(50));
}

TEST(RetryTest, RetryAfterIsAFloorWithSpreadOnTop) {
  RetryPolicy p;
  p.base = milliseconds(100);
  p.cap = milliseconds(30'000);
  // [after, 2 * after]: clients turned away together come back apart.
  std::set<long long> seen;
  for (uint32_t r = 0; r < 200'000; r += 997) {
    auto d = BackoffDelay(p, 1, 2L, r * 131);
    EXPECT_GE(d, milliseconds(2000));
    EXPECT_LE(d, milliseconds(4000));
    seen.insert(d.count() / 250);
  }
  EXPECT_GE(seen.size(), 6u) << "the spread covers the interval, not one point";
}

TEST(RetryTest, WithoutJitterEveryDrawWaitsTheSame) {
  RetryPolicy p;
  p.base = milliseconds(100);
  p.cap = milliseconds(5000);
  p.jitter = false;
  for (uint32_t r : {0u, 12345u, 0xffffffffu}) {
    EXPECT_EQ(BackoffDelay(p, 1, {}, r), milliseconds(100));
    EXPECT_EQ(BackoffDelay(p, 3, {}, r), milliseconds(400));
    EXPECT_EQ(BackoffDelay(p, 1, 2L, r), milliseconds(2000));
  }
}

// ClassifyAnswer is pure: a fixed "now", no clock, no transport.
class ClassifyTest : public testing::Test {
 protected:
  HttpResponse Status(long status, std::optional<long> retry_after = {}) {
    HttpResponse r;
    r.status = status;
    r.retry_after_s = retry_after;
    return r;
  }
  HttpResponse Transport(bool retryable, bool timed_out = false) {
    HttpResponse r;
    r.transport_error = "Connection refused";
    r.transport_retryable = retryable;
    r.timed_out = timed_out;
    return r;
  }
  Verdict Classify(const HttpResponse& r, AttemptState s = {}, uint32_t random = 0) {
    return ClassifyAnswer(r, s, policy, now, now + std::chrono::seconds(60), random);
  }
  RetryPolicy policy{.max_retries = 2, .base = milliseconds(100), .cap = milliseconds(10'000)};
  Clock::time_point now = Clock::time_point() + std::chrono::hours(1);
};

TEST_F(ClassifyTest, SuccessIsDone) {
  EXPECT_EQ(Classify(Status(200)).next, Verdict::Next::kDone);
  EXPECT_EQ(Classify(Status(204)).next, Verdict::Next::kDone);
}

TEST_F(ClassifyTest, UnauthorizedRefreshesTheTokenOnceForKmsRequests) {
  AttemptState kms{.bearer_token = true};
  Verdict v = Classify(Status(401), kms);
  EXPECT_EQ(v.next, Verdict::Next::kRefreshToken);
  EXPECT_EQ(v.retry_at, now);
  kms.token_refreshed = true;
  v = Classify(Status(401), kms);
  EXPECT_EQ(v.next, Verdict::Next::kFail);
  EXPECT_EQ(v.result, -EPROTO);
  EXPECT_EQ(Classify(Status(401)).next, Verdict::Next::kFail);  // IAM itself: no token to renew
}

TEST_F(ClassifyTest, RetryAtTheLaterOfBackoffAndRetryAfter) {
  Verdict v = Classify(Status(429, 3L));
  EXPECT_EQ(v.next, Verdict::Next::kRetry);
  EXPECT_EQ(v.retry_at, now + milliseconds(3000));
  v = Classify(Status(503), {.retries = 1}, 100);
  EXPECT_EQ(v.next, Verdict::Next::kRetry);
  EXPECT_EQ(v.retry_at, now + milliseconds(200));  // retry 2: [100, 200] ms, top of the range
}

TEST_F(ClassifyTest, FailsWithTheReason) {
  Verdict v = Classify(Status(501));
  EXPECT_EQ(v.next, Verdict::Next::kFail);
  EXPECT_EQ(v.gave_up, Verdict::GaveUp::kNotRetryable);
  EXPECT_EQ(Classify(Status(422)).result, -EPROTO);
  EXPECT_EQ(Classify(Transport(false)).result, -EHOSTUNREACH);
  v = Classify(Status(503), {.retries = 2});
  EXPECT_EQ(v.gave_up, Verdict::GaveUp::kNoRetriesLeft);
  EXPECT_EQ(v.result, -EPROTO);
  v = Classify(Transport(true, true), {.retries = 2});
  EXPECT_EQ(v.gave_up, Verdict::GaveUp::kNoRetriesLeft);
  EXPECT_EQ(v.result, -ETIMEDOUT);
}

TEST_F(ClassifyTest, NoRetryThatWouldStartPastTheDeadline) {
  Verdict v = Classify(Status(429, 61L));
  EXPECT_EQ(v.next, Verdict::Next::kRetry);  // capped at 10 s, before the deadline
  policy.cap = milliseconds(120'000);
  v = Classify(Status(429, 61L));
  EXPECT_EQ(v.next, Verdict::Next::kFail);
  EXPECT_EQ(v.gave_up, Verdict::GaveUp::kPastDeadline);
  EXPECT_EQ(v.result, -EPROTO);
  policy.max_retries = -1;
  EXPECT_EQ(Classify(Transport(true), {.retries = 1000}).result, -ETIMEDOUT);
}

}  // namespace
}  // namespace hpcs
