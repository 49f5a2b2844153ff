#include "tpm/tpm2.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "tpm/tpm2_blob.h"
#include "tpm/tpm2_testing.h"

namespace hpcs {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::kApiKey;
using testing::Str;
using testing::Tpm2Test;

TEST_F(Tpm2Test, SealsAndUnseals) {
  std::string blob = Seal({7, 16});
  EXPECT_TRUE(blob.starts_with("-----BEGIN HPCS TPM2 SEALED DATA-----\n")) << blob;
  EXPECT_EQ(blob.find(kApiKey), std::string::npos);  // not in clear
  Tpm2Blob parsed;
  std::string err;
  ASSERT_EQ(ParseTpm2Blob(blob, &parsed, &err), 0) << err;
  EXPECT_EQ(parsed.pcrs, (std::vector<unsigned>{7, 16}));
  Secret out;
  ASSERT_EQ(Unseal(blob, &out, &err), 0) << err;
  EXPECT_EQ(Str(out), kApiKey);
  // Twice: nothing is left loaded in the TPM (swtpm has no resource manager
  // and only three object slots).
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Unseal(blob, &out, &err), 0) << i << ": " << err;
  }
}

TEST_F(Tpm2Test, UnsealingIsBoundedByTheDeadline) {
  std::string blob = Seal({16});
  TpmOptions o = options_;
  o.deadline = steady_clock::now() + std::chrono::seconds(20);
  Secret out;
  std::string err;
  ASSERT_EQ(UnsealApiKey(blob, o, &out, &err), 0) << err;
  EXPECT_EQ(Str(out), kApiKey);
  o.deadline = steady_clock::now() - milliseconds(1);  // already past
  EXPECT_EQ(UnsealApiKey(blob, o, &out, &err), -ETIMEDOUT);
  EXPECT_NE(err.find("did not answer before the deadline"), std::string::npos) << err;
}

}  // namespace
}  // namespace hpcs
