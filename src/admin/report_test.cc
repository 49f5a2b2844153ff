#include "admin/report.h"

#include <gtest/gtest.h>

#include "admin/report_checks.h"
#include "base/json.h"
#include "testing/test_doubles.h"

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
      v.header.tokens.push_back({0, "luks2-keyring", desc, {1}});
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

}  // namespace
}  // namespace hpcs
