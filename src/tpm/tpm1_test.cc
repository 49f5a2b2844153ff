#include "tpm/tpm1.h"

#include <gtest/gtest.h>
#include <mbedtls/md.h>
// clang-format off
// tss.h must come first: trousers.h uses its types.
#include <trousers/tss.h>
#include <trousers/trousers.h>
// clang-format on

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tpm/tpm1_blob.h"
#include "tpm/tpm1_test_blob.h"
#include "tpm/tpm_testing.h"

namespace hpcs {
namespace {

using testing::HaveCommand;
using testing::kTpmSealdataBlob;
using testing::OwnTpm;
using testing::ReadFile;
using testing::RunShell;
using testing::ScopedEnv;
using testing::Str;
using testing::UnusedPort;
using testing::WriteFile;

constexpr auto kNoDeadline = std::chrono::steady_clock::time_point::max();

// ---- Trousers without tcsd ----

TEST(TrousersTpmTest, TcsdDownSaysWhereAndWhatToDo) {
  int port = UnusedPort();
  ASSERT_GT(port, 0);
  ScopedEnv host("TSS_TCSD_HOSTNAME", "127.0.0.1");
  ScopedEnv p("TSS_TCSD_PORT", std::to_string(port));
  std::shared_ptr<Tpm> tpm = MakeTpm1();
  Secret out = Secret::FromString("untouched");
  std::string err;
  EXPECT_EQ(tpm->Unseal(kTpmSealdataBlob, &out, &err), -ECONNREFUSED);
  const std::string where = "127.0.0.1:" + std::to_string(port);
  EXPECT_NE(err.find("cannot reach tcsd at " + where), std::string::npos) << err;
  EXPECT_NE(err.find("must be running"), std::string::npos) << err;
  EXPECT_EQ(Str(out), "untouched");

  std::string blob = "untouched";
  const unsigned pcrs[] = {4, 5};
  EXPECT_EQ(tpm->Seal(Secret::FromString("k"), pcrs, &blob, &err), -ECONNREFUSED);
  EXPECT_NE(err.find(where), std::string::npos) << err;
  EXPECT_EQ(blob, "untouched");
}

TEST(TrousersTpmTest, CorruptBlobIsRejectedBeforeTalkingToTcsd) {
  int port = UnusedPort();
  ScopedEnv p("TSS_TCSD_PORT", std::to_string(port));
  std::shared_ptr<Tpm> tpm = MakeTpm1();
  Secret out;
  std::string err;
  EXPECT_EQ(tpm->Unseal("-----BEGIN TSS-----\n", &out, &err), -EBADMSG);
  EXPECT_NE(err.find("TSS KEY"), std::string::npos) << err;
}

TEST(TrousersTpmTest, RejectsPcrOutOfRange) {
  std::shared_ptr<Tpm> tpm = MakeTpm1();
  const unsigned pcrs[] = {4, 24};
  std::string blob, err;
  EXPECT_EQ(tpm->Seal(Secret::FromString("k"), pcrs, &blob, &err), -EINVAL);
  EXPECT_NE(err.find("24"), std::string::npos) << err;
}

// ---- Against a real (software) TPM through tcsd ----
//
// Each case gets a TPM 1.2 of its own (OwnTpm: swtpm and tcsd over a copy of
// an owned state), so a case that extends a PCR changes no other case's TPM.

// Extends a PCR through libtspi, as firmware would on a changed boot.
void ExtendPcr(unsigned pcr) {
  TSS_HCONTEXT ctx;
  TSS_HTPM tpm;
  ASSERT_EQ(Tspi_Context_Create(&ctx), TSS_SUCCESS);
  ASSERT_EQ(Tspi_Context_Connect(ctx, nullptr), TSS_SUCCESS);
  ASSERT_EQ(Tspi_Context_GetTpmObject(ctx, &tpm), TSS_SUCCESS);
  BYTE digest[20] = {'h', 'p', 'c', 's', '-', 't', 'e', 's', 't'};
  UINT32 len = 0;
  BYTE* value = nullptr;
  EXPECT_EQ(Tspi_TPM_PcrExtend(tpm, pcr, sizeof digest, digest, nullptr, &len, &value),
            TSS_SUCCESS);
  Tspi_Context_FreeMemory(ctx, nullptr);
  Tspi_Context_Close(ctx);
}

class Tpm1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = OwnTpm::Missing(OwnTpm::Kind::kTpm12); !why.empty()) {
      GTEST_SKIP() << "needs a TPM 1.2 on swtpm with tcsd: " << why;
    }
    if (!HaveCommand("tpm_sealdata") || !HaveCommand("tpm_unsealdata")) {
      GTEST_SKIP() << "needs tpm-tools (tpm_sealdata, tpm_unsealdata)";
    }
    std::string err;
    ASSERT_EQ(own_.Start(OwnTpm::Kind::kTpm12, &err), 0) << err;
    TSS_HCONTEXT ctx;
    bool up = Tspi_Context_Create(&ctx) == TSS_SUCCESS &&
              Tspi_Context_Connect(ctx, nullptr) == TSS_SUCCESS;
    Tspi_Context_Close(ctx);
    ASSERT_TRUE(up) << "tcsd started by tests/tpm/tpm-env does not answer at TSS_TCSD_PORT="
                    << getenv("TSS_TCSD_PORT");
    char tmpl[] = "/tmp/hpcs-tpm-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) RunShell("rm -rf '" + dir_ + "'");
  }

  // Seals `data` with tpm_sealdata to PCRs 4 and 5; returns the file text.
  std::string TpmSealdata(std::string_view data) {
    WriteFile(dir_ + "/in", data);
    EXPECT_EQ(RunShell("tpm_sealdata -z -p 4 -p 5 -i '" + dir_ + "/in' -o '" + dir_ +
                       "/blob' >/dev/null"),
              0);
    return ReadFile(dir_ + "/blob");
  }
  // Unseals a blob text with tpm_unsealdata; nullopt if it fails.
  std::optional<std::string> TpmUnsealdata(std::string_view blob) {
    WriteFile(dir_ + "/blob", blob);
    if (RunShell("tpm_unsealdata -z -i '" + dir_ + "/blob' -o '" + dir_ + "/out' 2>/dev/null") !=
        0) {
      return std::nullopt;
    }
    return ReadFile(dir_ + "/out");
  }

  OwnTpm own_;
  std::string dir_;
};

// An IBM Cloud API key is 44 characters: with echo's newline 45 bytes, 48
// bytes encrypted.
constexpr std::string_view kApiKey = "0123456789abcdefghijABCDEFGHIJ-_0123456789xy";

TEST_F(Tpm1Test, UnsealsTpmSealdataBlobToTheKeyWithoutNewline) {
  std::string blob = TpmSealdata(std::string(kApiKey) + "\n");
  ASSERT_NE(blob.find("-----BEGIN TSS-----"), std::string::npos);
  std::shared_ptr<Tpm> tpm = MakeTpm1();
  Secret key;
  std::string err;
  ASSERT_EQ(UnsealApiKey(tpm, blob, kNoDeadline, &key, &err), 0) << err;
  EXPECT_EQ(Str(key), kApiKey);
  // Tpm::Unseal itself returns the data as sealed.
  Secret raw;
  ASSERT_EQ(tpm->Unseal(blob, &raw, &err), 0) << err;
  EXPECT_EQ(Str(raw), std::string(kApiKey) + "\n");
}

TEST_F(Tpm1Test, UnsealsTpmSealdataBlobsOfManyLengths) {
  std::shared_ptr<Tpm> tpm = MakeTpm1();
  for (size_t n : {1, 15, 16, 17, 31, 32, 47, 48, 100, 300}) {
    std::string data(n, 'x');
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>('a' + i % 26);
    std::string blob = TpmSealdata(data);
    Secret out;
    std::string err;
    ASSERT_EQ(tpm->Unseal(blob, &out, &err), 0) << n << ": " << err;
    EXPECT_EQ(Str(out), data);
  }
}

TEST_F(Tpm1Test, OurSealUnsealsWithTpmUnsealdataAndWithUs) {
  std::shared_ptr<Tpm> tpm = MakeTpm1();
  const unsigned pcrs[] = {4, 5};
  for (std::string data : {std::string(kApiKey), std::string(kApiKey) + "\n", std::string("short"),
                           std::string(100, 'z')}) {
    std::string blob, err;
    ASSERT_EQ(tpm->Seal(Secret::FromString(data), pcrs, &blob, &err), 0) << err;
    EXPECT_EQ(blob.find(data), std::string::npos);  // not in clear
    auto theirs = TpmUnsealdata(blob);
    ASSERT_TRUE(theirs.has_value()) << "tpm_unsealdata failed on:\n" << blob;
    EXPECT_EQ(*theirs, data);
    Secret ours;
    ASSERT_EQ(tpm->Unseal(blob, &ours, &err), 0) << err;
    EXPECT_EQ(Str(ours), data);
  }
}

TEST_F(Tpm1Test, SealsToHighPcrsAndToNoPcrs) {
  std::shared_ptr<Tpm> tpm = MakeTpm1();
  const unsigned high[] = {7, 16, 23};  // PCRs > 15 need TPM_PCR_INFO_LONG
  std::string blob, err;
  ASSERT_EQ(tpm->Seal(Secret::FromString("high"), high, &blob, &err), 0) << err;
  EXPECT_EQ(TpmUnsealdata(blob), std::optional<std::string>("high"));
  ASSERT_EQ(tpm->Seal(Secret::FromString("none"), {}, &blob, &err), 0) << err;
  EXPECT_EQ(TpmUnsealdata(blob), std::optional<std::string>("none"));
  Secret out;
  ASSERT_EQ(tpm->Unseal(blob, &out, &err), 0) << err;
  EXPECT_EQ(Str(out), "none");
}

TEST_F(Tpm1Test, ExtendedPcrGivesThePcrMessage) {
  std::string theirs = TpmSealdata(std::string(kApiKey) + "\n");
  std::shared_ptr<Tpm> tpm = MakeTpm1();
  const unsigned pcrs[] = {4, 5};
  std::string ours, err;
  ASSERT_EQ(tpm->Seal(Secret::FromString(kApiKey), pcrs, &ours, &err), 0) << err;

  ExtendPcr(5);

  for (const std::string& blob : {theirs, ours}) {
    Secret out = Secret::FromString("untouched");
    err.clear();
    EXPECT_EQ(UnsealApiKey(tpm, blob, kNoDeadline, &out, &err), -EKEYREJECTED);
    EXPECT_NE(err.find("TPM_E_WRONGPCRVAL"), std::string::npos) << err;
    EXPECT_NE(err.find("changed since sealing"), std::string::npos) << err;
    EXPECT_NE(err.find("hpcs-for-luks seal-api-key"), std::string::npos) << err;
    EXPECT_EQ(err.find(kApiKey), std::string::npos);
    EXPECT_EQ(Str(out), "untouched");
  }
  EXPECT_FALSE(TpmUnsealdata(theirs).has_value());  // tpm-tools agrees
}

// The TPM lock (core/tpm_lock.h) on a TPM 1.2: our extend is the TPM's, and
// a blob sealed to the value the PCR will hold after it unseals only then.
TEST_F(Tpm1Test, ExtendsAPcrAndSealsToAGivenValue) {
  std::shared_ptr<Tpm> tpm = MakeTpm1();
  std::vector<uint8_t> before, after, digest(20, 0x3c);
  std::string err;
  ASSERT_EQ(tpm->ReadPcr(kLockPcr, &before, &err), 0) << err;
  ASSERT_EQ(before.size(), 20u);
  std::vector<uint8_t> both = before;
  both.insert(both.end(), digest.begin(), digest.end());
  std::vector<uint8_t> expected(20);
  mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA1), both.data(), both.size(), expected.data());

  TpmOptions o;
  o.seal_pcr_values_tpm1[kLockPcr] = expected;
  std::shared_ptr<Tpm> future = MakeTpm1(o);
  const unsigned pcrs[] = {4, kLockPcr};
  std::string later, now;
  ASSERT_EQ(future->Seal(Secret::FromString(kApiKey), pcrs, &later, &err), 0) << err;
  ASSERT_EQ(tpm->Seal(Secret::FromString(kApiKey), pcrs, &now, &err), 0) << err;
  Secret out;
  EXPECT_EQ(tpm->Unseal(later, &out, &err), -EKEYREJECTED) << err;
  ASSERT_EQ(tpm->Unseal(now, &out, &err), 0) << err;

  ASSERT_EQ(tpm->ExtendPcr(kLockPcr, digest, &err), 0) << err;
  ASSERT_EQ(tpm->ReadPcr(kLockPcr, &after, &err), 0) << err;
  EXPECT_EQ(after, expected);
  EXPECT_EQ(tpm->Unseal(now, &out, &err), -EKEYREJECTED) << err;
  ASSERT_EQ(tpm->Unseal(later, &out, &err), 0) << err;
  EXPECT_EQ(Str(out), kApiKey);
  EXPECT_EQ(tpm->ExtendPcr(kLockPcr, std::vector<uint8_t>(32), &err), -EINVAL);
}

TEST_F(Tpm1Test, CorruptSectionsAreNamed) {
  std::string blob = TpmSealdata("0123456789abcdefghij\n");  // two AES blocks
  SealedBlob b;
  ASSERT_EQ(ParseSealedBlob(blob, &b, nullptr), 0);
  std::shared_ptr<Tpm> tpm = MakeTpm1();

  struct Case {
    const char* name;
    SealedBlob blob;
    const char* expected;
  };
  std::vector<Case> cases;
  {
    SealedBlob c = b;  // inside the encrypted private part of the key
    c.tss_key[c.tss_key.size() - 40] ^= 0x01;
    cases.push_back({"key private part", c, "TSS KEY"});
  }
  {
    SealedBlob c = b;
    c.tss_key.resize(100);
    cases.push_back({"key truncated", c, "TSS KEY"});
  }
  {
    SealedBlob c = b;  // inside the RSA-encrypted part of TPM_STORED_DATA
    c.enc_key[c.enc_key.size() - 20] ^= 0x01;
    cases.push_back({"sealed key", c, "ENC KEY"});
  }
  {
    SealedBlob c = b;
    c.enc_key.resize(20);
    cases.push_back({"sealed key truncated", c, "ENC KEY"});
  }
  {
    SealedBlob c = b;
    c.enc_data[15] ^= 0x80;  // pad byte 12 -> 0x8c
    cases.push_back({"data", c, "ENC DAT"});
  }
  for (const auto& c : cases) {
    Secret out = Secret::FromString("untouched");
    std::string err;
    EXPECT_EQ(tpm->Unseal(FormatSealedBlob(c.blob), &out, &err), -EBADMSG) << c.name << ": " << err;
    EXPECT_NE(err.find(c.expected), std::string::npos) << c.name << ": " << err;
    EXPECT_EQ(Str(out), "untouched");
  }
}

}  // namespace
}  // namespace hpcs
