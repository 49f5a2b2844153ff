#include "tpm/tpm2_rc.h"

#include <gtest/gtest.h>
#include <tss2/tss2_tpm2_types.h>

#include <cerrno>
#include <string>

namespace hpcs::tpm2 {
namespace {

constexpr auto npos = std::string::npos;

TEST(Tpm2RcTest, TpmCodeDropsTheHandleSessionOrParameterNumber) {
  EXPECT_EQ(TpmCode(TPM2_RC_AUTH_FAIL | TPM2_RC_S | TPM2_RC_1), TPM2_RC_AUTH_FAIL);
  EXPECT_EQ(TpmCode(TPM2_RC_HIERARCHY | TPM2_RC_P | TPM2_RC_2), TPM2_RC_HIERARCHY);
  // Through the kernel's resource manager: the same code.
  EXPECT_TRUE(IsTpmLayer(TSS2_RESMGR_TPM_RC_LAYER | TPM2_RC_LOCKOUT));
  EXPECT_EQ(TpmCode(TSS2_RESMGR_TPM_RC_LAYER | TPM2_RC_LOCKOUT), TPM2_RC_LOCKOUT);
  // Not the TPM's: left as it is.
  EXPECT_FALSE(IsTpmLayer(TSS2_TCTI_RC_IO_ERROR));
  EXPECT_EQ(TpmCode(TSS2_TCTI_RC_IO_ERROR), TSS2_TCTI_RC_IO_ERROR);
}

TEST(Tpm2RcTest, DescribeGivesTheCodeAndTss2sText) {
  std::string d = Describe(TPM2_RC_LOCKOUT);
  EXPECT_TRUE(d.starts_with("TSS2 error 0x921 (")) << d;
  EXPECT_TRUE(d.ends_with(")")) << d;
  EXPECT_GT(d.size(), std::string("TSS2 error 0x921 ()").size()) << d;
}

TEST(Tpm2RcTest, CommonErrorsSayWhatToDo) {
  std::string err;
  EXPECT_EQ(CommonError(TPM2_RC_LOCKOUT, "unsealing", "'swtpm:port=1'", &err), -EBUSY);
  EXPECT_TRUE(err.starts_with("unsealing failed: TSS2 error 0x921 (")) << err;
  EXPECT_NE(err.find("tpm2_dictionarylockout --clear-lockout"), npos) << err;

  EXPECT_EQ(CommonError(TSS2_TCTI_RC_IO_ERROR, "reading the PCRs", "'swtpm:port=1'", &err),
            -ECONNREFUSED);
  EXPECT_NE(err.find("lost the TPM 2.0 at 'swtpm:port=1'"), npos) << err;

  EXPECT_EQ(CommonError(TPM2_RC_FAILURE, "unsealing", "", &err), -ENODEV);
  EXPECT_NE(err.find("failure mode"), npos) << err;
  EXPECT_EQ(CommonError(TPM2_RC_HIERARCHY | TPM2_RC_P | TPM2_RC_1, "unsealing", "", &err), -ENODEV);
  EXPECT_NE(err.find("owner hierarchy is disabled"), npos) << err;
  EXPECT_EQ(CommonError(TPM2_RC_INITIALIZE, "unsealing", "", &err), -ENODEV);
  EXPECT_NE(err.find("TPM2_Startup"), npos) << err;
}

TEST(Tpm2RcTest, AnyOtherCodeNamesTheStepAndTheCode) {
  std::string err;
  EXPECT_EQ(CommonError(TPM2_RC_VALUE, "creating the sealed object", "", &err), -EIO);
  EXPECT_TRUE(err.starts_with("creating the sealed object failed: TSS2 error 0x84 (")) << err;
  EXPECT_TRUE(err.ends_with(")")) << err;  // nothing dangling after the code
}

TEST(Tpm2RcTest, ATpm12sAnswersAreRecognized) {
  EXPECT_TRUE(LooksLikeTpm12(TSS2_SYS_RC_GENERAL_FAILURE));
  EXPECT_TRUE(LooksLikeTpm12(TSS2_SYS_RC_MALFORMED_RESPONSE));
  EXPECT_TRUE(LooksLikeTpm12(TPM2_RC_BAD_TAG));
  EXPECT_FALSE(LooksLikeTpm12(TPM2_RC_LOCKOUT));
  EXPECT_FALSE(LooksLikeTpm12(TSS2_TCTI_RC_IO_ERROR));
}

}  // namespace
}  // namespace hpcs::tpm2
