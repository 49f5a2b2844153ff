#include "kp/cert_time.h"

#include <gtest/gtest.h>
#include <mbedtls/x509.h>

#include <ctime>

namespace hpcs {
namespace {

TEST(CertTimeTest, OnlyTheFutureStartIsForgiven) {
  EXPECT_EQ(ForgiveFutureStart(MBEDTLS_X509_BADCERT_FUTURE), 0u);
  EXPECT_EQ(ForgiveFutureStart(MBEDTLS_X509_BADCERT_FUTURE | MBEDTLS_X509_BADCRL_FUTURE), 0u);
  for (uint32_t other : {MBEDTLS_X509_BADCERT_EXPIRED, MBEDTLS_X509_BADCERT_NOT_TRUSTED,
                         MBEDTLS_X509_BADCERT_CN_MISMATCH, MBEDTLS_X509_BADCERT_REVOKED,
                         MBEDTLS_X509_BADCERT_BAD_KEY, MBEDTLS_X509_BADCERT_OTHER}) {
    EXPECT_EQ(ForgiveFutureStart(other | MBEDTLS_X509_BADCERT_FUTURE), other);
    EXPECT_EQ(ForgiveFutureStart(other), other);
  }
  EXPECT_EQ(ForgiveFutureStart(0), 0u);
}

TEST(CertTimeTest, TheClockIsBehindOnlyBeforeTheBuildDay) {
  std::time_t built = BuildTime();
  EXPECT_EQ(built % 86400, 0);
  EXPECT_GT(built, 1700000000);  // November 2023: older than this code
  EXPECT_LE(built, std::time(nullptr));
  EXPECT_TRUE(ClockBehindBuild(978307200));  // 2001-01-01, qemu -rtc base=2001-01-01
  EXPECT_TRUE(ClockBehindBuild(built - 1));
  EXPECT_FALSE(ClockBehindBuild(built));
  EXPECT_FALSE(ClockBehindBuild(std::time(nullptr)));
}

TEST(CertTimeTest, FormatsUtc) { EXPECT_EQ(FormatUtc(978307200), "2001-01-01 00:00 UTC"); }

}  // namespace
}  // namespace hpcs
