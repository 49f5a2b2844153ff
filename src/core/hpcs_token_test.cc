#include "core/hpcs_token.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "base/json.h"

namespace hpcs {
namespace {

constexpr char kUuid[] = "0B5C7C2A-6a1e-4f55-9d0e-3c1f8b2e9a10";

HpcsToken Sample() {
  HpcsToken t;
  t.keyslots = {1, 7};
  t.kms = "https://us-south.kms.cloud.ibm.com";
  t.instance = "6d8b52e5-1f2a-4c3b-9a0e-2f5d7c1b8e40";
  t.crk = "b3f1c2d4-0000-4abc-8def-1234567890ab";
  t.key_version = "a2c4e6f8-1111-4222-8333-444455556666";
  t.ciphertext = "eyJjaXBoZXJ0ZXh0IjoiQUJD+/==";
  t.name = "luks:root";
  return t;
}

// The token's JSON with member `name` replaced by `value` (raw JSON text),
// or left out when value is empty.
std::string With(const std::string& name, const std::string& value) {
  JsonInit();
  Json j = JsonParse(FormatHpcsToken(Sample()));
  cJSON_DeleteItemFromObjectCaseSensitive(j.get(), name.c_str());
  if (!value.empty()) cJSON_AddItemToObject(j.get(), name.c_str(), cJSON_Parse(value.c_str()));
  return std::string(JsonPrint(j.get()).view());
}

TEST(HpcsTokenTest, RoundTripAndFormat) {
  HpcsToken t = Sample();
  std::string json = FormatHpcsToken(t);
  EXPECT_EQ(json, R"({"type":"hpcs","keyslots":["1","7"],"version":1,)"
                  R"("kms":"https://us-south.kms.cloud.ibm.com",)"
                  R"("instance":"6d8b52e5-1f2a-4c3b-9a0e-2f5d7c1b8e40",)"
                  R"("crk":"b3f1c2d4-0000-4abc-8def-1234567890ab",)"
                  R"("key_version":"a2c4e6f8-1111-4222-8333-444455556666",)"
                  R"("bound_to":"luks2-uuid","ciphertext":"eyJjaXBoZXJ0ZXh0IjoiQUJD+/==",)"
                  R"("name":"luks:root"})");
  HpcsToken back;
  std::string err;
  ASSERT_EQ(ParseHpcsToken(json, &back, &err), 0) << err;
  EXPECT_EQ(back, t);
  // No name: the member is left out, and still optional on the way in.
  t.name.clear();
  t.key_version.clear();  // "" when unknown: kept as ""
  json = FormatHpcsToken(t);
  EXPECT_EQ(json.find("\"name\""), std::string::npos);
  EXPECT_NE(json.find(R"("key_version":"")"), std::string::npos);
  ASSERT_EQ(ParseHpcsToken(json, &back, &err), 0) << err;
  EXPECT_EQ(back, t);
  // Members in any order, white space as LUKS2 may store it.
  ASSERT_EQ(ParseHpcsToken(
                R"({ "keyslots": ["1"], "type": "hpcs", "ciphertext": "QUJD", "version": 1,
                     "bound_to": "luks2-uuid", "crk": "c", "instance": "i", "key_version": "",
                     "kms": "https://kms.test:8443" })",
                &back, &err),
            0)
      << err;
  EXPECT_EQ(back.keyslots, std::vector<int>{1});
}

TEST(HpcsTokenTest, EveryRequiredMemberMissingIsNamed) {
  for (const char* m : {"type", "keyslots", "version", "kms", "instance", "crk", "key_version",
                        "bound_to", "ciphertext"}) {
    HpcsToken out = Sample();
    std::string err;
    EXPECT_EQ(ParseHpcsToken(With(m, ""), &out, &err), -EINVAL) << m;
    EXPECT_EQ(err, std::string("hpcs token: member '") + m + "' is missing");
    EXPECT_EQ(out, Sample()) << "nothing written on failure";
  }
  HpcsToken out;
  std::string err;
  EXPECT_EQ(ParseHpcsToken(With("name", ""), &out, &err), 0) << err;
}

TEST(HpcsTokenTest, EveryMemberOfTheWrongTypeIsNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"type", "1"},        {"keyslots", "\"1\""}, {"version", "\"1\""},
      {"kms", "[]"},        {"instance", "null"},  {"crk", "{}"},
      {"key_version", "2"}, {"bound_to", "true"},  {"ciphertext", "[\"QUJD\"]"},
      {"name", "3"}};
  for (const auto& [m, v] : cases) {
    HpcsToken out;
    std::string err;
    EXPECT_EQ(ParseHpcsToken(With(m, v), &out, &err), -EINVAL) << m;
    EXPECT_NE(err.find("'" + m + "'"), std::string::npos) << m << ": " << err;
  }
}

TEST(HpcsTokenTest, BadValuesAreRefusedNamingTheMember) {
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"type", "\"luks2-keyring\"", "member 'type' is 'luks2-keyring', not 'hpcs'"},
      {"keyslots", "[]", "member 'keyslots' names no key slot"},
      {"keyslots", "[1]", "member 'keyslots' must list key slots as strings"},
      {"keyslots", "[\"x\"]", "member 'keyslots' must list key slots as strings"},
      {"keyslots", "[\"-1\"]", "member 'keyslots' must list key slots as strings"},
      {"keyslots", "[\"1025\"]", "member 'keyslots' must list key slots as strings"},
      {"keyslots", "[\"2\",\"2\"]", "member 'keyslots' names key slot 2 twice"},
      {"version", "0", "member 'version' is not a whole number from 1"},
      {"version", "1.5", "member 'version' is not a whole number from 1"},
      {"kms", "\"http://kms.test\"", "member 'kms' is not an https:// URL"},
      {"instance", "\"\"", "member 'instance' is empty"},
      {"crk", "\"\"", "member 'crk' is empty"},
      {"crk", "\"a\\nb\"", "member 'crk' holds control characters"},
      {"bound_to", "\"luks2-label\"", "member 'bound_to' is 'luks2-label', not 'luks2-uuid'"},
      {"ciphertext", "\"\"", "member 'ciphertext' is empty"},
      {"ciphertext", "\"QU JD\"", "member 'ciphertext' holds other characters than printable"},
      {"ciphertext", "\"QUJD\\u00e9\"", "member 'ciphertext' holds other characters than"},
      {"ciphertext", "\"" + std::string(4097, 'A') + "\"",
       "member 'ciphertext' is longer than 4096 characters"},
      {"name", "\"" + std::string(256, 'n') + "\"", "member 'name' is longer than 255"},
  };
  for (const auto& [m, v, want] : cases) {
    HpcsToken out;
    std::string err;
    EXPECT_EQ(ParseHpcsToken(With(m, v), &out, &err), -EINVAL) << m << " = " << v;
    EXPECT_NE(err.find(want), std::string::npos) << m << " = " << v << ": " << err;
  }
  HpcsToken out;
  std::string err;
  EXPECT_EQ(ParseHpcsToken(With("ciphertext", "\"" + std::string(4096, 'A') + "\""), &out, &err), 0)
      << err;
}

TEST(HpcsTokenTest, UnknownAndRepeatedMembersAreRefused) {
  HpcsToken out;
  std::string err;
  EXPECT_EQ(ParseHpcsToken(With("nmae", "\"typo\""), &out, &err), -EINVAL);
  EXPECT_EQ(err, "hpcs token: unknown member 'nmae'");
  std::string twice = FormatHpcsToken(Sample());
  twice.insert(1, R"("crk":"other",)");
  EXPECT_EQ(ParseHpcsToken(twice, &out, &err), -EINVAL);
  EXPECT_EQ(err, "hpcs token: member 'crk' appears twice");
  for (const char* bad : {"", "[]", "\"hpcs\"", "{", "{\"type\":\"hpcs\"} x"}) {
    EXPECT_EQ(ParseHpcsToken(bad, &out, &err), -EINVAL) << bad;
    EXPECT_EQ(err, "hpcs token: not a JSON object") << bad;
  }
}

TEST(HpcsTokenTest, ANewerVersionIsRefused) {
  HpcsToken out;
  std::string err;
  EXPECT_EQ(ParseHpcsToken(With("version", "2"), &out, &err), -EINVAL);
  EXPECT_EQ(err, "hpcs token: version 2 is newer than this hpcs-for-luks reads (1): update it");
}

TEST(HpcsTokenTest, AadNamesTheUuidInLowerCase) {
  std::vector<std::string> aad = {"stale"};
  std::string err;
  ASSERT_EQ(HpcsTokenAad(kUuid, &aad, &err), 0) << err;
  EXPECT_EQ(aad, std::vector<std::string>{"luks2-uuid:0b5c7c2a-6a1e-4f55-9d0e-3c1f8b2e9a10"});
  for (const char* bad :
       {"", "0b5c7c2a6a1e4f559d0e3c1f8b2e9a10",   // no dashes
        "0b5c7c2a-6a1e-4f55-9d0e-3c1f8b2e9a1",    // 35
        "0b5c7c2a-6a1e-4f55-9d0e-3c1f8b2e9a100",  // 37
        "0b5c7c2a-6a1e-4f55-9d0e_3c1f8b2e9a10",   // '_'
        "0b5c7c2g-6a1e-4f55-9d0e-3c1f8b2e9a10",   // 'g'
        "0b5c7c2a-6a1e-4f55-9d0e-3c1f8b2e9a1\n", "0b5c7c2-a6a1e-4f55-9d0e-3c1f8b2e9a10"}) {
    aad = {"kept"};
    EXPECT_EQ(HpcsTokenAad(bad, &aad, &err), -EINVAL) << bad;
    EXPECT_NE(err.find("is not a LUKS UUID"), std::string::npos) << err;
    EXPECT_EQ(aad, std::vector<std::string>{"kept"});
  }
}

TEST(HpcsTokenTest, DescribeShortensTheCiphertext) {
  HpcsToken t = Sample();
  t.ciphertext = std::string(16, 'C') + std::string(300, 'D');
  std::vector<std::string> lines = DescribeHpcsToken(t);
  std::vector<std::string> want = {"\tversion: 1",
                                   "\tname: luks:root",
                                   "\tkms: https://us-south.kms.cloud.ibm.com",
                                   "\tinstance: 6d8b52e5-1f2a-4c3b-9a0e-2f5d7c1b8e40",
                                   "\tcrk: b3f1c2d4-0000-4abc-8def-1234567890ab",
                                   "\tkey_version: a2c4e6f8-1111-4222-8333-444455556666",
                                   "\tbound_to: luks2-uuid",
                                   "\tciphertext: CCCCCCCCCCCCCCCC... (316 chars)"};
  EXPECT_EQ(lines, want);
  t.key_version.clear();
  t.name.clear();
  t.ciphertext = "QUJD";
  lines = DescribeHpcsToken(t);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines[4], "\tkey_version: (unknown)");
  EXPECT_EQ(lines[6], "\tciphertext: QUJD (4 chars)");
}

}  // namespace
}  // namespace hpcs
