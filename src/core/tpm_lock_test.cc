#include "core/tpm_lock.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <vector>

#include "base/encoding.h"
#include "testing/test_doubles.h"

namespace hpcs {
namespace {

class TpmLockTest : public ::testing::TestWithParam<TpmKind> {
 protected:
  FakeTpm tpm_{GetParam()};
  ScratchDir dir_;
  std::string record_ = dir_.path() + "/tpm-lock";
};

TEST_P(TpmLockTest, TheLockExtendsOnceAndRecordsTheValueBefore) {
  std::vector<uint8_t> zero(tpm_.PcrSize(), 0);
  bool already = true;
  std::string err;
  ASSERT_EQ(LockTpm(tpm_, record_, &already, &err), 0) << err;
  EXPECT_FALSE(already);
  EXPECT_EQ(tpm_.extends, 1);
  std::vector<uint8_t> now;
  ASSERT_EQ(tpm_.ReadPcr(kLockPcr, &now, &err), 0);
  EXPECT_EQ(now, ExtendedPcrValue(GetParam(), zero, TpmLockDigest(GetParam())));
  EXPECT_NE(now, zero);

  // A second lock in the same boot (the emergency shell after the unit):
  // nothing more to do.
  ASSERT_EQ(LockTpm(tpm_, record_, &already, &err), 0) << err;
  EXPECT_TRUE(already);
  EXPECT_EQ(tpm_.extends, 1);

  // Sealing now must use the value from before the lock.
  std::vector<uint8_t> v;
  bool locked = false;
  ASSERT_EQ(PreLockValue(tpm_, record_, &v, &locked, &err), 0) << err;
  EXPECT_TRUE(locked);
  EXPECT_EQ(v, zero);
}

TEST_P(TpmLockTest, WithoutALockThisBootTheCurrentValueHolds) {
  std::string err;
  std::vector<uint8_t> v;
  bool locked = true;
  tpm_.pcrs[kLockPcr] = std::vector<uint8_t>(tpm_.PcrSize(), 7);
  ASSERT_EQ(PreLockValue(tpm_, record_, &v, &locked, &err), 0) << err;
  EXPECT_FALSE(locked);
  EXPECT_EQ(v, std::vector<uint8_t>(tpm_.PcrSize(), 7));
}

TEST_P(TpmLockTest, SomethingExtendingAfterTheLockKeepsTheValueBefore) {
  std::string err;
  bool already = false;
  ASSERT_EQ(LockTpm(tpm_, record_, &already, &err), 0) << err;
  std::vector<uint8_t> other(tpm_.PcrSize(), 0x5a);
  ASSERT_EQ(tpm_.ExtendPcr(kLockPcr, other, &err), 0);
  // Locked again (the PCR no longer holds the recorded value): extended once
  // more, and the value before stays the boot's.
  ASSERT_EQ(LockTpm(tpm_, record_, &already, &err), 0) << err;
  EXPECT_FALSE(already);
  std::vector<uint8_t> v;
  bool locked = false;
  ASSERT_EQ(PreLockValue(tpm_, record_, &v, &locked, &err), 0) << err;
  EXPECT_TRUE(locked);
  EXPECT_EQ(v, std::vector<uint8_t>(tpm_.PcrSize(), 0));
}

TEST_P(TpmLockTest, ATpmThatFailsIsAnError) {
  tpm_.pcr_result = -ENODEV;
  tpm_.error = "no TPM";
  bool already = false;
  std::string err;
  EXPECT_EQ(LockTpm(tpm_, record_, &already, &err), -ENODEV);
  EXPECT_EQ(err, "no TPM");
  struct stat st;
  EXPECT_NE(stat(record_.c_str(), &st), 0);  // no record of a lock that did not happen
}

INSTANTIATE_TEST_SUITE_P(BothKinds, TpmLockTest, ::testing::Values(TpmKind::kTpm1, TpmKind::kTpm2));

TEST(TpmLockRecordTest, RoundTripsAndRefusesWhatIsWrong) {
  TpmLockRecord r{TpmKind::kTpm2, kLockPcr, std::vector<uint8_t>(32, 1),
                  std::vector<uint8_t>(32, 2)};
  std::string text = FormatTpmLockRecord(r);
  EXPECT_EQ(text.substr(0, 19), "kind: tpm2\npcr: 15\n");
  TpmLockRecord back;
  std::string err;
  ASSERT_EQ(ParseTpmLockRecord(text, &back, &err), 0) << err;
  EXPECT_EQ(back.before, r.before);
  EXPECT_EQ(back.after, r.after);
  EXPECT_EQ(ParseTpmLockRecord("kind: tpm1\n" + text.substr(11), &back, &err), -EBADMSG);
  EXPECT_NE(err.find("right size"), std::string::npos) << err;
  EXPECT_EQ(ParseTpmLockRecord("kind: tpm2\npcr: 14\n", &back, &err), -EBADMSG);
  EXPECT_NE(err.find("PCR 14"), std::string::npos) << err;
  EXPECT_EQ(ParseTpmLockRecord("junk", &back, &err), -EBADMSG);
}

TEST(TpmLockRecordTest, ARecordWritableByOthersIsRefused) {
  FakeTpm tpm(TpmKind::kTpm2);
  ScratchDir dir;
  std::string path = dir.path() + "/tpm-lock";
  bool already = false;
  std::string err;
  ASSERT_EQ(LockTpm(tpm, path, &already, &err), 0) << err;
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  std::vector<uint8_t> v;
  bool locked = false;
  EXPECT_LT(PreLockValue(tpm, path, &v, &locked, &err), 0);
  EXPECT_NE(err.find(path), std::string::npos) << err;
  // Such a record does not stop the lock: the PCR is extended all the same.
  int before = tpm.extends;
  EXPECT_LT(LockTpm(tpm, path, &already, &err), 0);
  EXPECT_EQ(tpm.extends, before + 1);
}

// The digests are what the README documents (sha256sum/sha1sum of the text).
TEST(TpmLockRecordTest, TheMeasurementIsTheHashOfTheEventText) {
  EXPECT_EQ(TpmLockDigest(TpmKind::kTpm2).size(), 32u);
  EXPECT_EQ(TpmLockDigest(TpmKind::kTpm1).size(), 20u);
}

}  // namespace
}  // namespace hpcs
