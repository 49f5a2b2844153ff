// The TPM 2.0 unit tests' fixture (tpm2*_test.cc): each case gets a TPM 2.0
// of its own on swtpm (OwnTpm, tests/tpm/tpm-env), reached through our TCTI,
// with tpm2-tools ($TPM2TOOLS_TCTI) to cross-check and to change PCRs. Not part
// of the library.
#ifndef HPCS_TPM_TPM2_TESTING_H_
#define HPCS_TPM_TPM2_TESTING_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tpm/tpm.h"
#include "tpm/tpm2.h"
#include "tpm/tpm_testing.h"

namespace hpcs::testing {

// An IBM Cloud API key is 44 characters.
inline constexpr std::string_view kApiKey = "0123456789abcdefghijABCDEFGHIJ-_0123456789xy";

inline Secret ApiKey() { return Secret::FromString(kApiKey); }

// A fresh TPM 2.0 per case (about 0.1 s to start): PCRs reset, empty
// hierarchy passwords, no lockout, the seeds of its own; a case may clear it,
// lock it out or extend its PCRs without another noticing.
class Tpm2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = OwnTpm::Missing(OwnTpm::Kind::kTpm20); !why.empty()) {
      GTEST_SKIP() << "needs a TPM 2.0 on swtpm: " << why;
    }
    if (!HaveCommand("tpm2_pcrextend")) GTEST_SKIP() << "needs tpm2-tools";
    std::string err;
    ASSERT_EQ(own_.Start(OwnTpm::Kind::kTpm20, &err), 0) << err;
    options_.tpm2_tcti = getenv("HPCS_TPM2_TCTI");
    tpm_ = MakeTpm2(options_);
  }

  // Runs tpm2-tools; stdout and stderr go to the test's log only on failure.
  int Tools(const std::string& cmd) {
    std::string log = dir_.path() + "/tools.log";
    int rc = RunShell("{ " + cmd + "; } >'" + log + "' 2>&1");
    if (rc != 0) ADD_FAILURE() << cmd << ":\n" << ReadFile(log);
    return rc;
  }
  void Extend(unsigned pcr) {
    ASSERT_EQ(Tools("tpm2_pcrextend " + std::to_string(pcr) +
                    ":sha256=00000000000000000000000000000000000000000000000000000000000000a1"),
              0);
  }
  std::string Seal(std::vector<unsigned> pcrs, const Secret& data = ApiKey()) {
    std::string blob, err;
    EXPECT_EQ(tpm_->Seal(data, pcrs, &blob, &err), 0) << err;
    return blob;
  }
  int Unseal(std::string_view blob, Secret* out, std::string* err) {
    return UnsealApiKey(blob, options_, out, err);
  }

  OwnTpm own_;  // stopped after the members below are gone
  TpmOptions options_;
  std::unique_ptr<Tpm> tpm_;
  TempDir dir_;
};

}  // namespace hpcs::testing

#endif  // HPCS_TPM_TPM2_TESTING_H_
