#include "tpm/tpm2_session.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "tpm/tpm2.h"
#include "tpm/tpm2_testing.h"

namespace hpcs {
namespace {

using testing::ApiKey;
using testing::HaveCommand;
using testing::ReadFile;
using testing::RunShell;
using testing::TempDir;
using testing::Tpm2Test;
using testing::UnusedPort;

TEST(Tpm2WithoutTpmTest, Tpm12AtTheTctiIsTheWrongKind) {
  if (!HaveCommand("swtpm")) GTEST_SKIP() << "needs swtpm";
  TempDir d;
  // A free port for the TPM, and the next one for its control channel: the
  // second may be taken meanwhile ("Address already in use"), so try again.
  int port = 0;
  for (int i = 0; i < 20 && !port; ++i) {
    int p = UnusedPort();
    if (p <= 0 || p >= 65535) continue;
    if (RunShell("swtpm socket -d --pid file='" + d.path() + "/pid' --tpmstate dir='" + d.path() +
                 "' --server type=tcp,port=" + std::to_string(p) +
                 ",bindaddr=127.0.0.1 --ctrl type=tcp,port=" + std::to_string(p + 1) +
                 ",bindaddr=127.0.0.1 --flags not-need-init,startup-clear") == 0) {
      port = p;
    }
  }
  ASSERT_GT(port, 0) << "swtpm did not start on any of 20 ports";
  TpmOptions o;
  o.tpm2_tcti = "swtpm:host=127.0.0.1,port=" + std::to_string(port);
  std::string blob, err;
  const unsigned pcrs[] = {7};
  int rc = MakeTpm2(o)->Seal(ApiKey(), pcrs, &blob, &err);
  RunShell("kill $(cat '" + d.path() + "/pid')");
  EXPECT_EQ(rc, -EMEDIUMTYPE);
  EXPECT_NE(err.find("does not answer as a TPM 2.0"), std::string::npos) << err;
  EXPECT_NE(err.find("it is a TPM 1.2"), std::string::npos) << err;
}

TEST_F(Tpm2Test, ReadsThePcrsAsTpm2PcrreadDoes) {
  Extend(16);  // a value other than zero
  const std::string file = dir_.path() + "/pcrs.bin";
  ASSERT_EQ(Tools("tpm2_pcrread sha256:7,16 -o '" + file + "'"), 0);
  std::string theirs = ReadFile(file);  // in the order of the selection
  ASSERT_EQ(theirs.size(), 64u);
  tpm2::Session s(options_);
  std::string err;
  ASSERT_EQ(s.Open(&err), 0) << err;
  std::vector<PcrValue> ours;
  const unsigned pcrs[] = {16, 7};  // ours: in the order asked for
  ASSERT_EQ(s.ReadPcrs(pcrs, &ours, &err), 0) << err;
  ASSERT_EQ(ours.size(), 2u);
  EXPECT_EQ(std::string(ours[0].begin(), ours[0].end()), theirs.substr(32));
  EXPECT_EQ(std::string(ours[1].begin(), ours[1].end()), theirs.substr(0, 32));
}

TEST_F(Tpm2Test, AnOwnerPasswordIsNamedWithItsRemedy) {
  ASSERT_EQ(Tools("tpm2_changeauth -c owner hpcs-test-owner"), 0);
  std::string blob = "untouched", err;
  const unsigned pcrs[] = {16};
  int rc = tpm_->Seal(ApiKey(), pcrs, &blob, &err);
  ASSERT_EQ(Tools("tpm2_changeauth -c owner -p hpcs-test-owner"), 0);  // empty again
  EXPECT_EQ(rc, -EACCES);
  EXPECT_NE(err.find("creating the primary key failed"), std::string::npos) << err;
  EXPECT_NE(err.find("owner hierarchy has a password"), std::string::npos) << err;
  EXPECT_NE(err.find("tpm2_changeauth -c owner -p OLD"), std::string::npos) << err;
  EXPECT_EQ(blob, "untouched");
}

}  // namespace
}  // namespace hpcs
