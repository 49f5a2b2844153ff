#include "cmd/luks_command.h"

#include <gtest/gtest.h>

#include "base/json.h"
#include "core/hpcs_token.h"

namespace hpcs {
namespace {

LuksHeader Header() {
  LuksHeader h;
  h.keyslots = {{0, "argon2id", 1048576}, {2, "pbkdf2", 0}};
  h.tokens = {{1, "luks2-keyring", "luks:root", {0, 2}, ""}, {3, "systemd-tpm2", "", {}, ""}};
  return h;
}

TEST(LuksCommandTest, LinesForBash) {
  EXPECT_EQ(FormatLuksLines(Header()),
            "keyslot 0 argon2id 1048576\n"
            "keyslot 2 pbkdf2 0\n"
            "token 1 luks2-keyring 0,2 luks:root\n"
            "token 3 systemd-tpm2 -\n");
  EXPECT_EQ(FormatLuksLines(LuksHeader{}), "");
}

// What comes from the header cannot split a field or start a line.
TEST(LuksCommandTest, LinesEscapeWhatWouldSplitThem) {
  LuksHeader h;
  h.keyslots = {{5, "", 0}};
  h.tokens = {{0, "a b", "x y\nkeyslot 9 z\\", {1}, ""}};
  EXPECT_EQ(FormatLuksLines(h),
            "keyslot 5 - 0\n"
            "token 0 a\\x20b 1 x\\x20y\\x0akeyslot\\x209\\x20z\\x5c\n");
}

// An hpcs token: its key slots, root key, instance and name; one that does
// not parse, only its key slots.
LuksHeader HpcsHeader() {
  HpcsToken t;
  t.keyslots = {4};
  t.kms = "https://kms.example";
  t.instance = "inst-1";
  t.crk = "crk-1";
  t.key_version = "v1";
  t.ciphertext = "Y2lwaGVy";
  t.name = "luks:data";
  LuksHeader h;
  h.tokens = {{2, "hpcs", "", {4}, FormatHpcsToken(t)},
              {5, "hpcs", "", {6}, "{\"type\":\"hpcs\"}"}};
  t.name = "";
  h.tokens.push_back({7, "hpcs", "", {4}, FormatHpcsToken(t)});
  return h;
}

TEST(LuksCommandTest, HpcsTokensShowTheirRootKeyInstanceAndName) {
  EXPECT_EQ(FormatLuksLines(HpcsHeader()),
            "token 2 hpcs 4 crk-1 inst-1 luks:data\n"
            "token 5 hpcs 6\n"
            "token 7 hpcs 4 crk-1 inst-1 -\n");
  Json j = JsonParse(FormatLuksJson(HpcsHeader()));
  ASSERT_TRUE(j);
  const cJSON* tokens = JsonArray(j.get(), "tokens");
  ASSERT_TRUE(tokens);
  const cJSON* t0 = cJSON_GetArrayItem(tokens, 0);
  EXPECT_EQ(JsonString(t0, "crk").value_or(""), "crk-1");
  EXPECT_EQ(JsonString(t0, "instance").value_or(""), "inst-1");
  EXPECT_EQ(JsonString(t0, "name").value_or(""), "luks:data");
  EXPECT_FALSE(JsonString(cJSON_GetArrayItem(tokens, 1), "crk"));
}

TEST(LuksCommandTest, JsonReadsBack) {
  std::string text = FormatLuksJson(Header());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  Json j = JsonParse(text);
  ASSERT_TRUE(j) << text;
  const cJSON* slots = JsonArray(j.get(), "keyslots");
  ASSERT_TRUE(slots);
  ASSERT_EQ(cJSON_GetArraySize(slots), 2);
  const cJSON* s0 = cJSON_GetArrayItem(slots, 0);
  EXPECT_EQ(JsonNumber(s0, "id").value_or(-1), 0);
  EXPECT_EQ(JsonString(s0, "kdf").value_or(""), "argon2id");
  EXPECT_EQ(JsonNumber(s0, "memory_kib").value_or(0), 1048576);
  const cJSON* tokens = JsonArray(j.get(), "tokens");
  ASSERT_TRUE(tokens);
  ASSERT_EQ(cJSON_GetArraySize(tokens), 2);
  const cJSON* t0 = cJSON_GetArrayItem(tokens, 0);
  EXPECT_EQ(JsonNumber(t0, "id").value_or(-1), 1);
  EXPECT_EQ(JsonString(t0, "type").value_or(""), "luks2-keyring");
  EXPECT_EQ(JsonString(t0, "key_description").value_or(""), "luks:root");
  const cJSON* ks = JsonArray(t0, "keyslots");
  ASSERT_TRUE(ks);
  ASSERT_EQ(cJSON_GetArraySize(ks), 2);
  EXPECT_EQ(cJSON_GetArrayItem(ks, 1)->valuedouble, 2);
  // A token without a key description has none in the JSON either.
  EXPECT_FALSE(JsonString(cJSON_GetArrayItem(tokens, 1), "key_description"));
}

}  // namespace
}  // namespace hpcs
