// A build with HPCS_TPM=OFF: every entry point that needs a stack answers
// -EOPNOTSUPP with the one message, which names the build option.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "tpm/tpm.h"

namespace hpcs {
namespace {

void ExpectTheMessage(const std::string& err) {
  EXPECT_NE(err.find("no TPM support"), std::string::npos) << err;
  EXPECT_NE(err.find("HPCS_TPM=OFF"), std::string::npos) << err;
}

TEST(TpmNoneTest, EveryEntryPointSaysNotSupported) {
  std::string err;
  EXPECT_EQ(CheckTpmSupport(&err), -EOPNOTSUPP);
  ExpectTheMessage(err);

  Secret out;
  err.clear();
  EXPECT_EQ(UnsealApiKey("-----BEGIN TSS-----\n", TpmOptions{}, &out, &err), -EOPNOTSUPP);
  ExpectTheMessage(err);
  EXPECT_TRUE(out.empty());

  auto tpm = MakeTpm(TpmKind::kTpm2, TpmOptions{});
  std::string blob = "untouched";
  const unsigned pcrs[] = {7};
  err.clear();
  EXPECT_EQ(tpm->Seal(Secret::FromString("key"), pcrs, &blob, &err), -EOPNOTSUPP);
  ExpectTheMessage(err);
  EXPECT_EQ(blob, "untouched");
  err.clear();
  EXPECT_EQ(tpm->Unseal("blob", &out, &err), -EOPNOTSUPP);
  ExpectTheMessage(err);

  unsigned pcr = 99;
  std::optional<std::array<uint8_t, 32>> value;
  err.clear();
  EXPECT_EQ(ParsePcrArgument("7", &pcr, &value, &err), -EOPNOTSUPP);
  ExpectTheMessage(err);
  EXPECT_FALSE(BlobKind("-----BEGIN TSS-----\n").has_value());
}

}  // namespace
}  // namespace hpcs
