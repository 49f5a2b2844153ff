#include "core/luks2_metadata.h"

#include <gtest/gtest.h>

namespace hpcs {
namespace {

// Trimmed from `cryptsetup luksDump --dump-json-metadata` of cryptsetup 2.6.
constexpr char kDump[] = R"({"keyslots":{
  "0":{"type":"luks2","key_size":64,"kdf":{"type":"argon2id","time":4,"memory":65536,"cpus":2}},
  "2":{"type":"luks2","key_size":64,"kdf":{"type":"pbkdf2","hash":"sha256","iterations":1000}},
  "1":{"type":"luks2","key_size":64,"kdf":{"type":"argon2i","time":4,"memory":1048576,"cpus":4}}},
 "tokens":{
  "0":{"type":"luks2-keyring","keyslots":["2"],"key_description":"luks:data"},
  "1":{"type":"systemd-tpm2","keyslots":["1"]},
  "3":{"type":"luks2-keyring","keyslots":["0","1"],"key_description":"other"}},
 "segments":{},"digests":{},"config":{}})";

TEST(Luks2MetadataTest, ParsesKeyslotsAndTokens) {
  LuksHeader h;
  std::string err;
  ASSERT_EQ(ParseLuks2Metadata(kDump, &h, &err), 0) << err;
  ASSERT_EQ(h.keyslots.size(), 3u);
  EXPECT_EQ(h.keyslots[0].id, 0);
  EXPECT_EQ(h.keyslots[0].kdf, "argon2id");
  EXPECT_EQ(h.keyslots[0].memory_kib, 65536u);
  EXPECT_EQ(h.keyslots[1].id, 1);
  EXPECT_EQ(h.keyslots[1].memory_kib, 1048576u);
  EXPECT_EQ(h.Keyslot(2)->kdf, "pbkdf2");
  EXPECT_EQ(h.Keyslot(2)->memory_kib, 0u);
  EXPECT_EQ(h.Keyslot(7), nullptr);
  ASSERT_EQ(h.tokens.size(), 3u);
  auto t = h.KeyringTokens("luks:data");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0]->id, 0);
  EXPECT_EQ(t[0]->keyslots, std::vector<int>{2});
  EXPECT_EQ(h.KeyringTokens("other")[0]->keyslots, (std::vector<int>{0, 1}));
  EXPECT_TRUE(h.KeyringTokens("nobody").empty());
}

TEST(Luks2MetadataTest, RefusesWhatIsNotLuks2Metadata) {
  LuksHeader h;
  std::string err;
  EXPECT_LT(ParseLuks2Metadata("Device x is not a valid LUKS device.", &h, &err), 0);
  EXPECT_NE(err.find("not LUKS2 metadata"), std::string::npos) << err;
  EXPECT_LT(ParseLuks2Metadata(R"({"tokens":{}})", &h, &err), 0);
}

}  // namespace
}  // namespace hpcs
