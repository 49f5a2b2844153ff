#include "retry.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace hpcs
