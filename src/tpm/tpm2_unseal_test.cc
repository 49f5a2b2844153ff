#include "tpm/tpm2_unseal.h"

#include <gtest/gtest.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tcti_swtpm.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "base/encoding.h"
#include "tpm/tpm2.h"
#include "tpm/tpm2_blob.h"
#include "tpm/tpm2_tcti.h"
#include "tpm/tpm2_testing.h"

namespace hpcs {
namespace {

using testing::kApiKey;
using testing::RunShell;
using testing::Str;
using testing::Tpm2Test;
using testing::UnusedPort;

TEST(Tpm2WithoutTpmTest, RejectsAMalformedBlobBeforeTalkingToTheTpm) {
  TpmOptions o;
  o.tpm2_tcti = "swtpm:host=127.0.0.1,port=" + std::to_string(UnusedPort());
  Secret out;
  std::string err;
  EXPECT_EQ(MakeTpm2(o)->Unseal("-----BEGIN HPCS TPM2 SEALED DATA-----\n", &out, &err), -EBADMSG);
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

TEST_F(Tpm2Test, EveryChangedPcrIsNamed) {
  std::string blob = Seal({7, 16, 23});
  Extend(16);
  Extend(23);
  Secret out;
  std::string err;
  EXPECT_EQ(Unseal(blob, &out, &err), -EKEYREJECTED);
  EXPECT_NE(err.find("PCRs 16, 23 (SHA-256) changed"), std::string::npos) << err;
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
  TPM2B_NAME* name = nullptr;
  EXPECT_EQ(Esys_TR_GetName(esys, primary, &name), TSS2_RC_SUCCESS);
  b.primary_name = *name;  // its own primary's
  Esys_Free(name);
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

// The primary-name line of a blob, or "" (sealed before issue 22).
std::string PrimaryNameLine(const std::string& blob) {
  size_t at = blob.find("\nprimary-name: ");
  if (at == std::string::npos) return "";
  return blob.substr(at + 1, blob.find('\n', at + 1) - at);
}

TEST_F(Tpm2Test, TheSealRecordsThePrimaryKeysNameAsTheTpmNamesIt) {
  std::string blob = Seal({16});
  std::string line = PrimaryNameLine(blob);
  ASSERT_FALSE(line.empty()) << blob;
  // tpm2-tools makes the same primary (our template: TCG's ECC storage key,
  // noDA) and names it the same.
  const std::string d = dir_.path();
  ASSERT_EQ(Tools("tpm2_createprimary -C o -G ecc256:aes128cfb -a "
                  "'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|"
                  "decrypt' -c '" +
                  d + "/p.ctx' && tpm2_readpublic -c '" + d + "/p.ctx' -n '" + d +
                  "/name.bin' && tpm2_flushcontext -t"),
            0);
  std::string raw = testing::ReadFile(d + "/name.bin");
  std::string name = HexEncode({reinterpret_cast<const unsigned char*>(raw.data()), raw.size()});
  EXPECT_EQ(line, "primary-name: " + name + "\n");
}

// What a machine-in-the-middle on the TPM's bus would do: answer the
// primary's creation with a key of its own, whose name is not the one
// recorded. The unseal stops there: before the object is loaded (its private
// part is corrupt here, and it is not what is said), so before any session is
// salted with that key and before TPM2_Unseal.
TEST_F(Tpm2Test, APrimaryKeyOtherThanTheRecordedOneStopsTheUnsealBeforeAnythingIsSent) {
  std::string blob = Seal({16});
  std::string line = PrimaryNameLine(blob);
  ASSERT_FALSE(line.empty()) << blob;
  Tpm2Blob b;
  ASSERT_EQ(ParseTpm2Blob(blob, &b, nullptr), 0);
  b.private_area.buffer[b.private_area.size - 5] ^= 0x01;
  std::string other_line = line;
  other_line[line.size() - 2] = other_line[line.size() - 2] == '0' ? '1' : '0';
  std::string other = FormatTpm2Blob(b);
  ASSERT_NE(other.find(line), std::string::npos) << other;
  other.replace(other.find(line), line.size(), other_line);
  Secret out = Secret::FromString("untouched");
  std::string err;
  EXPECT_EQ(Unseal(other, &out, &err), -EACCES);
  EXPECT_NE(err.find("the primary key the TPM made is not the one the API key was sealed under"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("something between this machine and its TPM"), std::string::npos) << err;
  EXPECT_NE(err.find("seal-api-key"), std::string::npos) << err;
  EXPECT_EQ(Str(out), "untouched");

  // The recorded name unseals; a blob without one (sealed before issue 22)
  // still does.
  ASSERT_EQ(Unseal(blob, &out, &err), 0) << err;
  EXPECT_EQ(Str(out), kApiKey);
  std::string old = blob;
  old.erase(old.find(line), line.size());
  out = Secret::FromString("untouched");
  ASSERT_EQ(Unseal(old, &out, &err), 0) << err;
  EXPECT_EQ(Str(out), kApiKey);
}

// It clears the TPM (a new owner seed): its own, no other case's.
TEST_F(Tpm2Test, BlobFromBeforeTpm2ClearSaysWhatHappened) {
  std::string blob = Seal({16});
  std::string line = PrimaryNameLine(blob);
  ASSERT_FALSE(line.empty()) << blob;
  std::string old = blob;
  old.erase(old.find(line), line.size());
  ASSERT_EQ(Tools("tpm2_clear -c p"), 0);
  // The new owner seed gives another primary key: the recorded name says so.
  Secret out;
  std::string err;
  EXPECT_EQ(Unseal(blob, &out, &err), -EACCES);
  EXPECT_NE(err.find("sealed on another machine, or before this TPM's owner hierarchy was "
                     "cleared"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("seal-api-key"), std::string::npos) << err;
  // Without it, the TPM refuses the object.
  EXPECT_EQ(Unseal(old, &out, &err), -EBADMSG);
  EXPECT_NE(err.find("sealed on another machine, or before this TPM's owner hierarchy was "
                     "cleared"),
            std::string::npos)
      << err;
}

}  // namespace
}  // namespace hpcs
