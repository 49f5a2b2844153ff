#include "admin/report.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "admin/report_checks.h"
#include "base/json.h"
#include "core/tpm_lock.h"
#include "testing/test_doubles.h"
#include "tpm/tpm.h"

namespace hpcs {
namespace {

TEST(ReportTest, ExitStatusFollowsTheWorstFinding) {
  Report r;
  EXPECT_EQ(r.ExitCode(), 0);
  r.Add("key", "user/a", Level::kOk, "unwraps");
  r.Add("key", "user/b", Level::kInfo, "older key version", "hpcs-for-luks rewrap");
  EXPECT_EQ(r.Worst(), Level::kInfo);
  EXPECT_EQ(r.ExitCode(), 0);
  r.Add("memory", "/etc/crypttab", Level::kWarn, "a lot");
  EXPECT_EQ(r.ExitCode(), 1);
  r.Add("root-key", "k", Level::kFail, "suspended");
  EXPECT_EQ(r.Worst(), Level::kFail);
}

TEST(ReportTest, JsonHasNullsForWhatIsUnknown) {
  Report r;
  r.config_path = "/etc/hpcs-for-luks.ini";
  KeyFacts k;
  k.type = "user";
  k.description = "luks:data";
  r.keys.push_back(k);
  r.Add("key", "user/luks:data", Level::kWarn, "m", "do x");
  r.Add("key", "user/luks:data", Level::kOk, "fine");
  JsonInit();
  Json j = JsonParse(RenderReportJson(r));
  ASSERT_TRUE(j);
  EXPECT_EQ(JsonString(j.get(), "status"), "warn");
  EXPECT_EQ(JsonNumber(j.get(), "exit_status"), 1);
  EXPECT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(j.get(), "root_key")));
  EXPECT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(j.get(), "api_key")));
  const cJSON* key = cJSON_GetArrayItem(JsonArray(j.get(), "keys"), 0);
  EXPECT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(key, "unwraps")));
  EXPECT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(key, "current")));
  const cJSON* findings = JsonArray(j.get(), "findings");
  EXPECT_EQ(JsonString(cJSON_GetArrayItem(findings, 0), "remedy"), "do x");
  EXPECT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(findings, 1), "remedy")));
  std::string table = RenderReportTable(r);
  EXPECT_NE(table.find("WARN    key    user/luks:data  m\n"), std::string::npos) << table;
  EXPECT_NE(table.find("remedy: do x"), std::string::npos) << table;
  EXPECT_NE(table.find("1 problem (WARN or FAIL above)."), std::string::npos) << table;
}

// A token description or a file name from the disk cannot send escape
// sequences to the terminal or start a line of its own in the table (a
// forged "ok" line over a failure).
TEST(ReportTableTest, ControlCharactersFromTheDiskAreEscaped) {
  Report r;
  r.Add("volume", "luks:\x1b[2K\rroot", Level::kFail, "token 'a\nok    fake' is gone",
        "remove\x1b]0;x\x07 it");
  std::string table = RenderReportTable(r);
  EXPECT_EQ(table.find('\x1b'), std::string::npos) << table;
  EXPECT_EQ(table.find('\r'), std::string::npos) << table;
  EXPECT_EQ(table.find('\x07'), std::string::npos) << table;
  EXPECT_EQ(table.find("\nok    fake"), std::string::npos) << table;
  EXPECT_NE(table.find("luks:\\x1b[2K\\x0droot"), std::string::npos) << table;
  EXPECT_NE(table.find("token 'a\\x0aok    fake' is gone"), std::string::npos) << table;
}

// The memory check on volumes as ReadVolumes would find them.
class MemoryCheck : public ::testing::Test {
 protected:
  void SetUp() override { options_.fs_root = root_.path(); }
  void Ram(const std::string& kib) {
    root_.Write("proc/meminfo", "MemFree: 1 kB\nMemTotal:  " + kib + " kB\n");
  }
  // A volume with an argon2 slot 0 of `kib` and, if ours, a pbkdf2 slot 1
  // behind a luks2-keyring token for user key `desc`.
  void Volume(ReportContext& ctx, const std::string& name, uint64_t kib, const char* desc,
              const char* options = "luks") {
    ReportVolume v;
    v.entry = ParseCrypttab(name + " /dev/x none " + options)[0];
    v.device = "/dev/" + name;
    v.header.keyslots.push_back({0, "argon2id", kib});
    if (desc) {
      v.header.keyslots.push_back({1, "pbkdf2", 0});
      v.header.tokens.push_back({0, "luks2-keyring", desc, {1}, ""});
      ctx.stored.push_back({KeyType::kUser, desc, "/k/user/" + std::string(desc)});
    }
    ctx.volumes.push_back(std::move(v));
    ctx.crypttab_read = true;
  }
  ScratchDir root_;
  Config config_;
  ReportOptions options_;
  Report report_;
};

TEST_F(MemoryCheck, SumsTheSlotsUsedAtBootAgainstHalfTheRam) {
  Ram("4000000");
  ReportContext ctx(config_, options_, report_);
  Volume(ctx, "ours", 1048576, "luks:ours");              // our token's PBKDF2 slot: 0
  Volume(ctx, "pass1", 1048576, nullptr);                 // a passphrase prompt: 1 GiB
  Volume(ctx, "pass2", 1048576, nullptr);                 // another: 1 GiB
  Volume(ctx, "later", 1048576, nullptr, "luks,noauto");  // not at boot
  CheckMemory(ctx);
  ASSERT_TRUE(report_.memory);
  EXPECT_EQ(report_.memory->ram_kib, 4000000u);
  EXPECT_EQ(report_.memory->argon2_kib, 2097152u);
  ASSERT_EQ(report_.memory->volumes.size(), 3u);
  EXPECT_EQ(report_.memory->volumes[0].kib, 0u);
  ASSERT_EQ(report_.findings.size(), 1u);
  EXPECT_EQ(report_.findings[0].level, Level::kWarn);
  EXPECT_NE(report_.findings[0].message.find("'pass1' 1024 MiB, 'pass2' 1024 MiB"),
            std::string::npos)
      << report_.findings[0].message;
  EXPECT_NE(report_.findings[0].remedy.find("luksConvertKey --pbkdf pbkdf2"), std::string::npos);
}

TEST_F(MemoryCheck, WithinHalfTheRamIsFine) {
  Ram("4200000");
  ReportContext ctx(config_, options_, report_);
  Volume(ctx, "pass1", 1048576, nullptr);
  Volume(ctx, "pass2", 1048576, nullptr);
  CheckMemory(ctx);
  ASSERT_EQ(report_.findings.size(), 1u);
  EXPECT_EQ(report_.findings[0].level, Level::kOk);
}

// api_key = TPM: the report reads the blob once and unseals it once; the
// KMS check uses the key that the TPM check unsealed.
class ReportTpmTest : public testing::Test {
 protected:
  void SetUp() override {
    config.path = dir.Write("hpcs.ini", "");
    config.api_key_from_tpm = true;
    config.tpm_blob = dir.Write("api-key-blob.txt", kBlob);
    config.endpoint_url = "https://kms.test";
    config.iam_endpoint_url = "https://iam.test";
    config.service_instance_id = "instance";
    options.deadline = Clock::now() + std::chrono::seconds(30);
    options.make_tpm = [this](TpmKind kind) {
      kinds.push_back(kind);
      return tpm;
    };
  }
  static constexpr const char* kBlob = "-----BEGIN HPCS TPM2 SEALED DATA-----\nrest\n";
  ScratchDir dir;
  Config config;
  ReportOptions options;
  Report report;
  std::shared_ptr<FakeTpm> tpm = std::make_shared<FakeTpm>(TpmKind::kTpm2);
  std::vector<TpmKind> kinds;
};

#ifdef HPCS_HAVE_TPM
TEST_F(ReportTpmTest, TheBlobIsReadOnceAndUnsealedOnce) {
  ReportContext ctx(config, options, report);
  CheckTpm(ctx);
  CheckKms(ctx);
  EXPECT_EQ(tpm->blobs_seen.size(), 1u) << "the API key was unsealed more than once";
  EXPECT_EQ(kinds, std::vector<TpmKind>{TpmKind::kTpm2});
  ASSERT_TRUE(ctx.tpm_blob);
  EXPECT_EQ(*ctx.tpm_blob, kBlob);  // what the initramfs check compares
  ASSERT_TRUE(report.tpm);
  EXPECT_TRUE(report.tpm->unseals);
  EXPECT_EQ(report.tpm->kind, "TPM 2.0");
  EXPECT_TRUE(ctx.kms.client) << "the KMS check did not take the unsealed key";
}

TEST_F(ReportTpmTest, AFailedUnsealIsOneFindingAndTheKmsIsNotAsked) {
  tpm->result = -EKEYREJECTED;
  tpm->error = "PCR 7 (SHA-256) changed since sealing";
  ReportContext ctx(config, options, report);
  CheckTpm(ctx);
  CheckKms(ctx);
  EXPECT_EQ(tpm->blobs_seen.size(), 1u);
  EXPECT_FALSE(ctx.kms.client);
  ASSERT_EQ(report.findings.size(), 2u);
  EXPECT_NE(report.findings[0].message.find("does not unseal now: api_key = TPM: cannot unseal"),
            std::string::npos)
      << report.findings[0].message;
  EXPECT_NE(report.findings[1].message.find("see the TPM finding"), std::string::npos)
      << report.findings[1].message;
}

// After this boot's TPM lock the unseal fails by design: a note that says
// so, and the KMS checks are skipped with a note, not failed.
TEST_F(ReportTpmTest, ALockedTpmIsInformationNotAFailure) {
  std::string record = dir.path() + "/tpm-lock";
  setenv("HPCS_TPM_LOCK_RECORD", record.c_str(), 1);
  bool already = false;
  std::string err;
  ASSERT_EQ(LockTpm(*tpm, record, &already, &err), 0) << err;
  tpm->result = -EKEYREJECTED;
  tpm->error = "PCR 15 (SHA-256) changed since sealing";
  ReportContext ctx(config, options, report);
  CheckTpm(ctx);
  CheckKms(ctx);
  unsetenv("HPCS_TPM_LOCK_RECORD");
  ASSERT_TRUE(report.tpm);
  EXPECT_TRUE(report.tpm->locked);
  EXPECT_FALSE(report.tpm->unseals);
  EXPECT_FALSE(report.tpm->unseals_at_boot.has_value());  // not a real blob
  ASSERT_EQ(report.findings.size(), 2u);
  EXPECT_EQ(report.findings[0].level, Level::kInfo);
  EXPECT_NE(report.findings[0].message.find("the TPM is locked for this boot"), std::string::npos)
      << report.findings[0].message;
  EXPECT_EQ(report.findings[1].level, Level::kInfo);
  EXPECT_EQ(report.ExitCode(), 0);
  EXPECT_NE(report.findings[1].message.find("TPM is locked"), std::string::npos);
  EXPECT_FALSE(ctx.kms.client);
}
#else
TEST_F(ReportTpmTest, ABuildWithoutTpmSaysSoAndStillReadsTheBlob) {
  ReportContext ctx(config, options, report);
  CheckTpm(ctx);
  EXPECT_TRUE(kinds.empty());
  ASSERT_TRUE(ctx.tpm_blob);  // the initramfs check still compares it
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].level, Level::kFail);
  EXPECT_NE(report.findings[0].message.find("no TPM support"), std::string::npos);
  EXPECT_NE(report.findings[0].message.find("HPCS_TPM=OFF"), std::string::npos);
}
#endif

}  // namespace
}  // namespace hpcs
