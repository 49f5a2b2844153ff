#include "tpm2.h"

#include <gtest/gtest.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tcti_swtpm.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tpm2_blob.h"
#include "tpm_testing.h"

namespace hpcs {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::HaveCommand;
using testing::ReadFile;
using testing::RunShell;
using testing::ScopedEnv;
using testing::Str;
using testing::TempDir;
using testing::UnusedPort;
using testing::WriteFile;

// An IBM Cloud API key is 44 characters.
constexpr std::string_view kApiKey = "0123456789abcdefghijABCDEFGHIJ-_0123456789xy";

// ---- Without a TPM ----

TEST(TctiSpecTest, SplitsNameAndConfig) {
  TctiSpec s;
  std::string err;
  ASSERT_EQ(ParseTctiSpec("device:/dev/tpmrm0", &s, &err), 0) << err;
  EXPECT_EQ(s.name, "device");
  EXPECT_EQ(s.conf, "/dev/tpmrm0");
  ASSERT_EQ(ParseTctiSpec("swtpm:host=127.0.0.1,port=2321", &s, &err), 0) << err;
  EXPECT_EQ(s.name, "swtpm");
  EXPECT_EQ(s.conf, "host=127.0.0.1,port=2321");
  ASSERT_EQ(ParseTctiSpec("mssim", &s, &err), 0) << err;
  EXPECT_EQ(s.name, "mssim");
  EXPECT_EQ(s.conf, "");
  for (const char* bad : {"tabrmd:bus_type=system", "libtss2-tcti-device.so", "", ":x"}) {
    EXPECT_EQ(ParseTctiSpec(bad, &s, &err), -EINVAL) << bad;
    EXPECT_NE(err.find("unknown TCTI"), std::string::npos) << err;
    EXPECT_NE(err.find("swtpm:host=HOST,port=PORT"), std::string::npos) << err;
  }
}

Secret ApiKey() { return Secret::FromString(kApiKey); }

TEST(Tpm2WithoutTpmTest, NoDeviceWaitsThenSaysSo) {
  TempDir root;
  TpmOptions o;
  o.fs_root = root.path();
  o.device_wait = milliseconds(300);
  auto tpm = MakeTpm2(o);
  std::string blob = "untouched", err;
  auto start = steady_clock::now();
  const unsigned pcrs[] = {7};
  EXPECT_EQ(tpm->Seal(ApiKey(), pcrs, &blob, &err), -ENODEV);
  EXPECT_GE(steady_clock::now() - start, milliseconds(300));
  EXPECT_NE(err.find("no TPM 2.0 device"), std::string::npos) << err;
  EXPECT_NE(err.find("/dev/tpmrm0"), std::string::npos) << err;
  EXPECT_EQ(blob, "untouched");
}

TEST(Tpm2WithoutTpmTest, Tpm12DeviceIsTheWrongKind) {
  TempDir root;
  RunShell("mkdir -p '" + root.path() + "/dev' '" + root.path() + "/sys/class/tpm/tpm0'");
  WriteFile(root.path() + "/dev/tpm0", "");
  WriteFile(root.path() + "/sys/class/tpm/tpm0/tpm_version_major", "1\n");
  TpmOptions o;
  o.fs_root = root.path();
  std::string blob, err;
  const unsigned pcrs[] = {7};
  EXPECT_EQ(MakeTpm2(o)->Seal(ApiKey(), pcrs, &blob, &err), -EMEDIUMTYPE);
  EXPECT_NE(err.find("is a TPM 1.2"), std::string::npos) << err;
  EXPECT_NE(err.find("seal-api-key --tpm1"), std::string::npos) << err;
}

TEST(Tpm2WithoutTpmTest, UnreachableTctiNamesIt) {
  TpmOptions o;
  o.tpm2_tcti = "swtpm:host=127.0.0.1,port=" + std::to_string(UnusedPort());
  std::string blob = "untouched", err;
  const unsigned pcrs[] = {7};
  EXPECT_EQ(MakeTpm2(o)->Seal(ApiKey(), pcrs, &blob, &err), -ECONNREFUSED);
  EXPECT_NE(err.find("cannot reach the TPM 2.0 at '" + o.tpm2_tcti + "'"), std::string::npos)
      << err;
  EXPECT_EQ(blob, "untouched");
}

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
  Secret out;
  EXPECT_EQ(tpm->Unseal("-----BEGIN HPCS TPM2 SEALED DATA-----\n", &out, &err), -EBADMSG);
}

TEST(Tpm2WithoutTpmTest, Tpm12AtTheTctiIsTheWrongKind) {
  if (!HaveCommand("swtpm")) GTEST_SKIP() << "needs swtpm";
  TempDir d;
  int port = 0;
  for (int i = 0; i < 20 && !port; ++i) {
    int p = UnusedPort();
    if (p > 0 && p < 65535) port = p;
  }
  ASSERT_GT(port, 0);
  ASSERT_EQ(RunShell("swtpm socket -d --pid file='" + d.path() + "/pid' --tpmstate dir='" +
                     d.path() + "' --server type=tcp,port=" + std::to_string(port) +
                     ",bindaddr=127.0.0.1 --ctrl type=tcp,port=" + std::to_string(port + 1) +
                     ",bindaddr=127.0.0.1 --flags not-need-init,startup-clear"),
            0);
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

// ---- Against swtpm --tpm2 ----
//
// Run with tests/tpm/tpm-env: env=$(tests/tpm/tpm-env start --tpm2) && eval "$env"
// (sets HPCS_TPM2_TCTI and TPM2TOOLS_TCTI); tpm2-tools cross-check.

class Tpm2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tcti = getenv("HPCS_TPM2_TCTI");
    if (!tcti || !*tcti || !getenv("TPM2TOOLS_TCTI")) {
      GTEST_SKIP() << "needs a TPM 2.0: HPCS_TPM2_TCTI and TPM2TOOLS_TCTI are not set; start "
                      "one with eval \"$(tests/tpm/tpm-env start --tpm2)\"";
    }
    if (!HaveCommand("tpm2_pcrextend")) GTEST_SKIP() << "needs tpm2-tools";
    options_.tpm2_tcti = tcti;
    tpm_ = MakeTpm2(options_);
    // A PCR that an earlier test left extended.
    ASSERT_EQ(Tools("tpm2_pcrreset 16"), 0);
    ASSERT_EQ(Tools("tpm2_pcrreset 23"), 0);
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

  TpmOptions options_;
  std::unique_ptr<Tpm> tpm_;
  TempDir dir_;
};

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

TEST_F(Tpm2Test, ExtendedPcrStopsTheUnsealAndIsNamed) {
  std::string blob = Seal({7, 16});
  Secret out = Secret::FromString("untouched");
  std::string err;
  ASSERT_EQ(Unseal(blob, &out, &err), 0) << err;

  Extend(16);
  out = Secret::FromString("untouched");
  EXPECT_EQ(Unseal(blob, &out, &err), -EKEYREJECTED);
  EXPECT_NE(err.find("PCR 16 (SHA-256) changed since sealing"), std::string::npos) << err;
  EXPECT_EQ(err.find("PCR 7 "), std::string::npos) << err;  // unchanged: not named
  EXPECT_NE(err.find("hpcs-for-luks seal-api-key --tpm2 --pcr 7 --pcr 16"), std::string::npos)
      << err;
  EXPECT_EQ(err.find(kApiKey), std::string::npos);
  EXPECT_EQ(Str(out), "untouched");

  // tpm2-tools agrees that the object no longer opens (and reading it back
  // was not a fluke): reset the PCR, and it opens again.
  ASSERT_EQ(Tools("tpm2_pcrreset 16"), 0);
  ASSERT_EQ(Unseal(blob, &out, &err), 0) << err;
  EXPECT_EQ(Str(out), kApiKey);
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

TEST_F(Tpm2Test, EveryChangedPcrIsNamed) {
  std::string blob = Seal({7, 16, 23});
  Extend(16);
  Extend(23);
  Secret out;
  std::string err;
  EXPECT_EQ(Unseal(blob, &out, &err), -EKEYREJECTED);
  EXPECT_NE(err.find("PCRs 16, 23 (SHA-256) changed"), std::string::npos) << err;
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

TEST_F(Tpm2Test, CorruptPrivatePartIsNamed) {
  std::string blob = Seal({16});
  Tpm2Blob b;
  ASSERT_EQ(ParseTpm2Blob(blob, &b, nullptr), 0);
  b.private_area.buffer[b.private_area.size - 5] ^= 0x01;  // inside the encrypted sensitive part
  Secret out = Secret::FromString("untouched");
  std::string err;
  EXPECT_EQ(Unseal(FormatTpm2Blob(b), &out, &err), -EBADMSG);
  EXPECT_NE(err.find("cannot load the sealed object"), std::string::npos) << err;
  EXPECT_NE(err.find("private part"), std::string::npos) << err;
  EXPECT_EQ(Str(out), "untouched");
}

// A sealed object as another tool might make it: under a primary without
// noDA, so that the TPM's dictionary-attack lockout applies to it.
std::string SealDaProtected(const TpmOptions& o, const std::string& our_blob) {
  Tpm2Blob b;
  EXPECT_EQ(ParseTpm2Blob(our_blob, &b, nullptr), 0);
  b.primary_template.publicArea.objectAttributes &= ~TPMA_OBJECT_NODA;
  TctiSpec spec;
  EXPECT_EQ(ParseTctiSpec(o.tpm2_tcti, &spec, nullptr), 0);
  size_t size = 0;
  Tss2_Tcti_Swtpm_Init(nullptr, &size, spec.conf.c_str());
  std::vector<uint8_t> mem(size);
  auto* tcti = reinterpret_cast<TSS2_TCTI_CONTEXT*>(mem.data());
  EXPECT_EQ(Tss2_Tcti_Swtpm_Init(tcti, &size, spec.conf.c_str()), TSS2_RC_SUCCESS);
  ESYS_CONTEXT* esys = nullptr;
  EXPECT_EQ(Esys_Initialize(&esys, tcti, nullptr), TSS2_RC_SUCCESS);
  TPM2B_SENSITIVE_CREATE none{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcrs{};
  ESYS_TR primary = ESYS_TR_NONE;
  EXPECT_EQ(Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               &none, &b.primary_template, &outside, &creation_pcrs, &primary,
                               nullptr, nullptr, nullptr, nullptr),
            TSS2_RC_SUCCESS);
  TPM2B_SENSITIVE_CREATE data{};
  data.sensitive.data.size = kApiKey.size();
  memcpy(data.sensitive.data.buffer, kApiKey.data(), kApiKey.size());
  TPM2B_PUBLIC tmpl = b.public_area;
  tmpl.publicArea.objectAttributes &= ~TPMA_OBJECT_NODA;
  tmpl.publicArea.unique.keyedHash.size = 0;
  TPM2B_PRIVATE* priv = nullptr;
  TPM2B_PUBLIC* pub = nullptr;
  EXPECT_EQ(Esys_Create(esys, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &data, &tmpl,
                        &outside, &creation_pcrs, &priv, &pub, nullptr, nullptr, nullptr),
            TSS2_RC_SUCCESS);
  b.public_area = *pub;
  b.private_area = *priv;
  Esys_Free(priv);
  Esys_Free(pub);
  Esys_FlushContext(esys, primary);
  Esys_Finalize(&esys);
  Tss2_Tcti_Finalize(tcti);
  return FormatTpm2Blob(b);
}

TEST_F(Tpm2Test, DictionaryAttackLockoutIsNamedAndOurObjectsAreExempt) {
  std::string ours = Seal({16});
  std::string theirs = SealDaProtected(options_, ours);
  Secret out;
  std::string err;
  ASSERT_EQ(Unseal(theirs, &out, &err), 0) << err;  // it works until the lockout
  EXPECT_EQ(Str(out), kApiKey);

  // Into lockout: one failed try allowed, then a wrong password on a
  // DA-protected object (flushing as we go: swtpm has no resource manager).
  const std::string d = dir_.path();
  const std::string flush = " && tpm2_flushcontext -t";
  ASSERT_EQ(Tools("tpm2_dictionarylockout -s -n 1 -t 600 -l 600"), 0);
  ASSERT_EQ(
      Tools("tpm2_createprimary -C o -c '" + d + "/p.ctx'" + flush +
            " && echo x | tpm2_create -C '" + d + "/p.ctx' -p pw -i- -u '" + d + "/o.pub' -r '" +
            d + "/o.priv'" + flush + " && tpm2_load -C '" + d + "/p.ctx' -u '" + d +
            "/o.pub' -r '" + d + "/o.priv' -c '" + d + "/o.ctx'" + flush),
      0);
  RunShell("for i in 1 2; do tpm2_unseal -c '" + d + "/o.ctx' -p wrong; tpm2_flushcontext -t; " +
           "done >/dev/null 2>&1");

  EXPECT_EQ(Unseal(theirs, &out, &err), -EBUSY);
  EXPECT_NE(err.find("dictionary-attack lockout"), std::string::npos) << err;
  EXPECT_NE(err.find("tpm2_dictionarylockout --clear-lockout"), std::string::npos) << err;
  // Ours are noDA: a lockout (other software's wrong passwords) does not
  // stop the boot.
  ASSERT_EQ(Unseal(ours, &out, &err), 0) << err;
  EXPECT_EQ(Str(out), kApiKey);

  ASSERT_EQ(Tools("tpm2_dictionarylockout -c"), 0);
  ASSERT_EQ(Unseal(theirs, &out, &err), 0) << err;
}

// Last in this file: it clears the TPM (a new owner seed).
TEST_F(Tpm2Test, ZBlobFromBeforeTpm2ClearSaysWhatHappened) {
  std::string blob = Seal({16});
  ASSERT_EQ(Tools("tpm2_clear -c p"), 0);
  Secret out;
  std::string err;
  EXPECT_EQ(Unseal(blob, &out, &err), -EBADMSG);
  EXPECT_NE(err.find("sealed on another machine, or before this TPM's owner hierarchy was "
                     "cleared"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("seal-api-key"), std::string::npos) << err;
}

}  // namespace
}  // namespace hpcs
