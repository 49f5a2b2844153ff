#include "core/token_handoff.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

namespace hpcs {
namespace {

// A keyring of the test's own (in its process keyring), never root's @u.
class TokenHandoffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ring_ = add_key("keyring", "hpcs-handoff-test", nullptr, 0, KEY_SPEC_PROCESS_KEYRING);
    if (ring_ < 0) GTEST_SKIP() << "no kernel keyring here: " << strerror(errno);
  }
  void TearDown() override {
    if (ring_ >= 0) keyctl_invalidate(ring_);
  }
  key_serial_t ring_ = -1;
};

TEST_F(TokenHandoffTest, TheTokenIsTakenOnceAndThenGone) {
  std::string err;
  ASSERT_EQ(HandOffToken(Secret::FromString("bearer-xyz"), std::chrono::seconds(60), ring_, &err),
            0)
      << err;
  Secret got;
  ASSERT_EQ(TakeHandedToken(ring_, &got, &err), 0) << err;
  EXPECT_EQ(got.view(), "bearer-xyz");
  EXPECT_EQ(TakeHandedToken(ring_, &got, &err), -ENOKEY);
  EXPECT_NE(err.find(kHandoffKeyDescription), std::string::npos) << err;
}

TEST_F(TokenHandoffTest, ReadingLeavesTheTokenForTheRunThatTakesIt) {
  std::string err;
  ASSERT_EQ(HandOffToken(Secret::FromString("bearer-r"), std::chrono::seconds(60), ring_, &err), 0)
      << err;
  Secret got;
  ASSERT_EQ(ReadHandedToken(ring_, &got, &err), 0) << err;
  EXPECT_EQ(got.view(), "bearer-r");
  ASSERT_EQ(ReadHandedToken(ring_, &got, &err), 0) << err;
  ASSERT_EQ(TakeHandedToken(ring_, &got, &err), 0) << err;
  EXPECT_EQ(got.view(), "bearer-r");
  EXPECT_EQ(ReadHandedToken(ring_, &got, &err), -ENOKEY);
}

TEST_F(TokenHandoffTest, ANewTokenReplacesTheOld) {
  std::string err;
  ASSERT_EQ(HandOffToken(Secret::FromString("one"), std::chrono::seconds(60), ring_, &err), 0);
  ASSERT_EQ(HandOffToken(Secret::FromString("two"), std::chrono::seconds(60), ring_, &err), 0);
  Secret got;
  ASSERT_EQ(TakeHandedToken(ring_, &got, &err), 0) << err;
  EXPECT_EQ(got.view(), "two");
}

// The kernel's timeout, not our code, ends it (with generous slack).
TEST_F(TokenHandoffTest, TheTokenExpiresWithItsTimeout) {
  std::string err;
  ASSERT_EQ(HandOffToken(Secret::FromString("short"), std::chrono::seconds(1), ring_, &err), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  Secret got;
  EXPECT_EQ(TakeHandedToken(ring_, &got, &err), -ENOKEY) << err;
}

}  // namespace
}  // namespace hpcs
