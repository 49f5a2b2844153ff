#include "tpm/tpm2_pcr.h"

#include <gtest/gtest.h>
#include <mbedtls/md.h>

#include <cerrno>
#include <string>
#include <vector>

#include "tpm/tpm2_testing.h"

namespace hpcs {
namespace {

using testing::Tpm2Test;

std::vector<uint8_t> Sha256(std::vector<uint8_t> data) {
  std::vector<uint8_t> out(32);
  mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), data.data(), data.size(), out.data());
  return out;
}

TEST_F(Tpm2Test, ExtendingAPcrChangesItAsTheTpmComputesIt) {
  std::vector<uint8_t> before, after, digest(32, 0xa5);
  std::string err;
  ASSERT_EQ(tpm_->ReadPcr(kLockPcr, &before, &err), 0) << err;
  EXPECT_EQ(before, std::vector<uint8_t>(32, 0));  // a fresh TPM
  ASSERT_EQ(tpm_->ExtendPcr(kLockPcr, digest, &err), 0) << err;
  ASSERT_EQ(tpm_->ReadPcr(kLockPcr, &after, &err), 0) << err;
  std::vector<uint8_t> both = before;
  both.insert(both.end(), digest.begin(), digest.end());
  EXPECT_EQ(after, Sha256(both));
  EXPECT_EQ(tpm_->ExtendPcr(kLockPcr, std::vector<uint8_t>(20), &err), -EINVAL);
  EXPECT_EQ(tpm_->ReadPcr(24, &after, &err), -EINVAL);
}

// What the lock is for: a blob sealed to the PCR's value before the extend
// no longer unseals after it.
TEST_F(Tpm2Test, AfterTheExtendABlobSealedToTheLockPcrNoLongerUnseals) {
  std::string blob = Seal({7, kLockPcr});
  Secret out;
  std::string err;
  ASSERT_EQ(Unseal(blob, &out, &err), 0) << err;
  ASSERT_EQ(tpm_->ExtendPcr(kLockPcr, std::vector<uint8_t>(32, 1), &err), 0) << err;
  EXPECT_EQ(Unseal(blob, &out, &err), -EKEYREJECTED);
  EXPECT_NE(err.find("PCR 15"), std::string::npos) << err;
}

}  // namespace
}  // namespace hpcs
