#include "tpm/tpm2_seal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "tpm/tpm2.h"
#include "tpm/tpm2_blob.h"
#include "tpm/tpm2_testing.h"

namespace hpcs {
namespace {

using testing::ApiKey;
using testing::kApiKey;
using testing::ReadFile;
using testing::Str;
using testing::Tpm2Test;
using testing::UnusedPort;

TEST(Tpm2WithoutTpmTest, RejectsBadArgumentsBeforeTalkingToTheTpm) {
  TpmOptions o;
  o.tpm2_tcti = "swtpm:host=127.0.0.1,port=" + std::to_string(UnusedPort());
  auto tpm = MakeTpm2(o);
  std::string blob, err;
  const unsigned high[] = {7, 24};
  EXPECT_EQ(tpm->Seal(ApiKey(), high, &blob, &err), -EINVAL);
  EXPECT_NE(err.find("24"), std::string::npos) << err;
  EXPECT_EQ(tpm->Seal(ApiKey(), {}, &blob, &err), -EINVAL);
  const unsigned pcrs[] = {7};
  EXPECT_EQ(tpm->Seal(Secret(kMaxTpm2SealedData + 1), pcrs, &blob, &err), -EINVAL);
}

TEST_F(Tpm2Test, SealsEveryLengthUpToTheLimit) {
  for (size_t n : {size_t{1}, size_t{44}, size_t{45}, kMaxTpm2SealedData}) {
    Secret data(n);
    for (size_t i = 0; i < n; ++i) data.data()[i] = static_cast<unsigned char>('a' + i % 26);
    std::string blob = Seal({16}, data);
    Secret out;
    std::string err;
    ASSERT_EQ(tpm_->Unseal(blob, &out, &err), 0) << n << ": " << err;
    EXPECT_TRUE(out.Equals(data)) << n;
  }
}

TEST_F(Tpm2Test, PolicyDigestIsTpm2PolicypcrsForTheSamePcrs) {
  Extend(16);  // a value other than zero
  std::string blob = Seal({0, 7, 16});
  Tpm2Blob parsed;
  ASSERT_EQ(ParseTpm2Blob(blob, &parsed, nullptr), 0);
  const std::string policy = dir_.path() + "/policy.bin";
  const std::string session = dir_.path() + "/session.ctx";
  ASSERT_EQ(Tools("tpm2_startauthsession -S '" + session + "' && tpm2_policypcr -S '" + session +
                  "' -l sha256:0,7,16 -L '" + policy + "' && tpm2_flushcontext '" + session + "'"),
            0);
  std::string theirs = ReadFile(policy);
  const TPM2B_DIGEST& ours = parsed.public_area.publicArea.authPolicy;
  ASSERT_EQ(theirs.size(), ours.size);
  EXPECT_EQ(theirs, std::string(reinterpret_cast<const char*>(ours.buffer), ours.size));
}

TEST_F(Tpm2Test, SealsAgainstGivenValuesForAStateToCome) {
  // The value PCR 16 will have after one Extend(16), read from the TPM.
  Extend(16);
  const std::string value_file = dir_.path() + "/pcr16.bin";
  ASSERT_EQ(Tools("tpm2_pcrread sha256:16 -o '" + value_file + "'"), 0);
  std::string bytes = ReadFile(value_file);
  ASSERT_EQ(bytes.size(), 32u);
  ASSERT_EQ(Tools("tpm2_pcrreset 16"), 0);

  TpmOptions o = options_;
  std::copy(bytes.begin(), bytes.end(), o.seal_pcr_values[16].begin());
  std::string blob, err;
  const unsigned pcrs[] = {7, 16};
  ASSERT_EQ(MakeTpm2(o)->Seal(ApiKey(), pcrs, &blob, &err), 0) << err;
  Secret out;
  EXPECT_EQ(Unseal(blob, &out, &err), -EKEYREJECTED);  // not yet
  EXPECT_NE(err.find("PCR 16 (SHA-256) changed"), std::string::npos) << err;
  Extend(16);
  ASSERT_EQ(Unseal(blob, &out, &err), 0) << err;
  EXPECT_EQ(Str(out), kApiKey);

  // A value for a PCR that is not sealed to is a mistake.
  const unsigned other[] = {7};
  EXPECT_EQ(MakeTpm2(o)->Seal(ApiKey(), other, &blob, &err), -EINVAL);
  EXPECT_NE(err.find("PCR 16, which is not sealed to"), std::string::npos) << err;
}

}  // namespace
}  // namespace hpcs
