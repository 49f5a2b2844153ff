#include "core/luks2_metadata.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "testing/test_doubles.h"

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

TEST(Luks2MetadataTest, EachTokenKeepsItsOwnJsonCompact) {
  constexpr char kWithHpcs[] = R"({"keyslots":{},"tokens":{
    "2":{ "type":"hpcs", "keyslots":[ "1" ], "version":1, "name":"a \"b\"" },
    "0":{"type":"luks2-keyring","keyslots":["2"],"key_description":"luks:data"}}})";
  LuksHeader h;
  std::string err;
  ASSERT_EQ(ParseLuks2Metadata(kWithHpcs, &h, &err), 0) << err;
  ASSERT_EQ(h.tokens.size(), 2u);
  EXPECT_EQ(h.tokens[0].json,
            R"({"type":"luks2-keyring","keyslots":["2"],"key_description":"luks:data"})");
  EXPECT_EQ(h.tokens[1].json, R"({"type":"hpcs","keyslots":["1"],"version":1,"name":"a \"b\""})");
  EXPECT_EQ(h.tokens[1].type, "hpcs");
}

TEST(Luks2MetadataTest, RefusesWhatIsNotLuks2Metadata) {
  LuksHeader h;
  std::string err;
  EXPECT_LT(ParseLuks2Metadata("Device x is not a valid LUKS device.", &h, &err), 0);
  EXPECT_NE(err.find("not LUKS2 metadata"), std::string::npos) << err;
  EXPECT_LT(ParseLuks2Metadata(R"({"tokens":{}})", &h, &err), 0);
}

// An id is a number in 0..1024 (a crafted header may say anything); an entry
// with another id is left out, and so is a token's key slot with one.
TEST(Luks2MetadataTest, LeavesOutIdsOutsideTheRange) {
  LuksHeader h;
  std::string err;
  ASSERT_EQ(ParseLuks2Metadata(R"({"keyslots":{"1024":{},"1025":{},"-1":{},"x":{},
                                    "99999999999999999999":{}},
                                   "tokens":{"1025":{"type":"luks2-keyring"},
                                    "0":{"type":"luks2-keyring",
                                         "keyslots":["1025","1024","-1",3,"x"]}}})",
                               &h, &err),
            0)
      << err;
  ASSERT_EQ(h.keyslots.size(), 1u);
  EXPECT_EQ(h.keyslots[0].id, 1024);
  ASSERT_EQ(h.tokens.size(), 1u);
  EXPECT_EQ(h.tokens[0].id, 0);
  EXPECT_EQ(h.tokens[0].keyslots, std::vector<int>{1024});
}

TEST(Luks2MetadataTest, AMemoryCostOutOfRangeIsZeroNotUndefined) {
  LuksHeader h;
  std::string err;
  ASSERT_EQ(ParseLuks2Metadata(R"({"keyslots":{"0":{"kdf":{"type":"argon2id","memory":-1e300}},)"
                               R"("1":{"kdf":{"type":"argon2id","memory":1e300}}}})",
                               &h, &err),
            0)
      << err;
  ASSERT_EQ(h.keyslots.size(), 2u);
  EXPECT_EQ(h.keyslots[0].memory_kib, 0u);
  EXPECT_EQ(h.keyslots[1].memory_kib, 0u);
}

// ReadLuks2Header on images that cryptsetup made (no device-mapper needed),
// beside what cryptsetup itself says of them.
class Luks2HeaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(Sh("command -v cryptsetup >/dev/null"), 0)
        << "these tests need the cryptsetup program (Debian: cryptsetup-bin)";
    key_ = dir_.Write("key", "not a secret, a test");
  }

  // Runs a shell command line: its exit status, or -1.
  static int Sh(const std::string& cmd) {
    int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

  // cryptsetup ARGS (key file and image given as {key} {img}), or fails the test.
  void Cryptsetup(const std::string& args, const std::string& img, const std::string& input = "") {
    std::string cmd =
        "cryptsetup --batch-mode " + args + " '" + img + "' >'" + dir_.path() + "/out' 2>&1";
    if (!input.empty()) cmd = "printf '%s' '" + input + "' | " + cmd;
    for (size_t at; (at = cmd.find("{key}")) != std::string::npos;) cmd.replace(at, 5, key_);
    ASSERT_EQ(Sh(cmd), 0) << cmd << ":\n" << Slurp(dir_.path() + "/out");
  }

  // A 32 MiB image `name`, LUKS2 with key slot 0 (quick PBKDF2), `more` options.
  std::string Format(const std::string& name, const std::string& more = "") {
    std::string img = dir_.path() + "/" + name;
    EXPECT_EQ(Sh("truncate -s 32M '" + img + "'"), 0);
    Cryptsetup(
        "luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "
        "--key-file '{key}' " +
            more,
        img);
    return img;
  }

  // What ParseLuks2Metadata makes of cryptsetup's own dump.
  LuksHeader Dumped(const std::string& img) {
    LuksHeader h;
    Cryptsetup("luksDump --dump-json-metadata", img);
    std::string err;
    EXPECT_EQ(ParseLuks2Metadata(Slurp(dir_.path() + "/out"), &h, &err), 0) << err;
    return h;
  }

  static std::string Slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

  // Writes `bytes` over the file at `offset`.
  static void Overwrite(const std::string& path, uint64_t offset, const std::string& bytes) {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(f.good()) << path;
  }
  // Inverts the byte at `offset`.
  static void Flip(const std::string& path, uint64_t offset) {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(~c));
    ASSERT_TRUE(f.good()) << path << " at " << offset;
  }

  static void ExpectSame(const LuksHeader& a, const LuksHeader& b) {
    ASSERT_EQ(a.keyslots.size(), b.keyslots.size());
    for (size_t i = 0; i < a.keyslots.size(); ++i) {
      EXPECT_EQ(a.keyslots[i].id, b.keyslots[i].id);
      EXPECT_EQ(a.keyslots[i].kdf, b.keyslots[i].kdf);
      EXPECT_EQ(a.keyslots[i].memory_kib, b.keyslots[i].memory_kib);
    }
    ASSERT_EQ(a.tokens.size(), b.tokens.size());
    for (size_t i = 0; i < a.tokens.size(); ++i) {
      EXPECT_EQ(a.tokens[i].id, b.tokens[i].id);
      EXPECT_EQ(a.tokens[i].type, b.tokens[i].type);
      EXPECT_EQ(a.tokens[i].key_description, b.tokens[i].key_description);
      EXPECT_EQ(a.tokens[i].keyslots, b.tokens[i].keyslots);
    }
  }

  // ReadLuks2Header's code; its message in err_.
  int Read(const std::string& img) {
    header_ = LuksHeader();
    err_.clear();
    return ReadLuks2Header(img, &header_, &err_);
  }

  ScratchDir dir_;
  std::string key_;
  LuksHeader header_;
  std::string err_;
};

constexpr uint64_t kJsonArea = 4096;     // where the primary's JSON starts
constexpr uint64_t kSecondary = 0x4000;  // cryptsetup's default hdr_size

TEST_F(Luks2HeaderTest, FindsTheTokensAndKeySlotsCryptsetupSees) {
  std::string img = Format("img");
  Cryptsetup(
      "luksAddKey --key-file '{key}' --new-keyfile '{key}' --key-slot 3 --pbkdf argon2id "
      "--pbkdf-memory 32 --pbkdf-force-iterations 4 --pbkdf-parallel 1",
      img);
  Cryptsetup("token add --key-description luks:data --key-slot 0", img);
  Cryptsetup("token import --token-id 2", img, R"({"type":"hpcs-test","keyslots":["3"]})");
  ASSERT_EQ(Read(img), 0) << err_;
  auto t = header_.KeyringTokens("luks:data");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0]->id, 0);
  EXPECT_EQ(t[0]->keyslots, std::vector<int>{0});
  EXPECT_TRUE(header_.KeyringTokens("luks:other").empty());
  ASSERT_NE(header_.Keyslot(3), nullptr);
  EXPECT_EQ(header_.Keyslot(3)->kdf, "argon2id");
  EXPECT_EQ(header_.Keyslot(3)->memory_kib, 32u);
  ExpectSame(header_, Dumped(img));
}

TEST_F(Luks2HeaderTest, KnowsTheVolumesUuidFromTheBinaryHeader) {
  std::string img = Format("img", "--uuid 0b3e9c2a-5d7f-4e61-9a38-c41f2b6d8e07");
  ASSERT_EQ(Read(img), 0) << err_;
  EXPECT_EQ(header_.uuid, "0b3e9c2a-5d7f-4e61-9a38-c41f2b6d8e07");
  // From the secondary copy too (the primary's binary header damaged).
  Flip(img, 100);
  ASSERT_EQ(Read(img), 0) << err_;
  EXPECT_EQ(header_.uuid, "0b3e9c2a-5d7f-4e61-9a38-c41f2b6d8e07");
  // The JSON metadata does not hold it.
  EXPECT_EQ(Dumped(img).uuid, "");
}

TEST_F(Luks2HeaderTest, APrimaryWithADamagedJsonAreaIsReadFromTheSecondary) {
  std::string img = Format("img");
  Cryptsetup("token add --key-description luks:data --key-slot 0", img);
  LuksHeader before = Dumped(img);
  Flip(img, kJsonArea + 10);
  ASSERT_EQ(Read(img), 0) << err_;
  EXPECT_EQ(header_.KeyringTokens("luks:data").size(), 1u);
  ExpectSame(header_, before);
}

TEST_F(Luks2HeaderTest, ALargerHeaderHasItsSecondaryFurtherOn) {
  // hdr_size 64 KiB: the secondary is at 64 KiB, where a damaged primary
  // cannot say it is.
  std::string img = Format("img", "--luks2-metadata-size 64k");
  Cryptsetup("token add --key-description luks:data --key-slot 0", img);
  ASSERT_EQ(Read(img), 0) << err_;
  EXPECT_EQ(header_.KeyringTokens("luks:data").size(), 1u);
  // A primary hdr_size of 1 TiB is not believed (nor allocated).
  Overwrite(img, 8, std::string("\0\0\x01\0\0\0\0\0", 8));
  ASSERT_EQ(Read(img), 0) << err_;
  EXPECT_EQ(header_.KeyringTokens("luks:data").size(), 1u);
  Flip(img, 0x10000 + kJsonArea + 10);
  EXPECT_EQ(Read(img), -EBADMSG);
  EXPECT_NE(err_.find("header size 1099511627776"), std::string::npos) << err_;
  EXPECT_NE(err_.find("at offset 65536: checksum mismatch"), std::string::npos) << err_;
}

TEST_F(Luks2HeaderTest, BothCopiesDamagedIsBadMessage) {
  std::string img = Format("img");
  Flip(img, kJsonArea + 10);
  Flip(img, kSecondary + kJsonArea + 10);
  EXPECT_EQ(Read(img), -EBADMSG);
  EXPECT_NE(err_.find("'" + img + "': both copies of its LUKS2 header are damaged"),
            std::string::npos)
      << err_;
  // A damaged binary header too (its label is under the checksum).
  img = Format("img2");
  Flip(img, 30);
  ASSERT_EQ(Read(img), 0) << err_;
  Flip(img, kSecondary + 30);
  EXPECT_EQ(Read(img), -EBADMSG) << err_;
}

TEST_F(Luks2HeaderTest, TheCopyWithTheHigherSequenceNumberWins) {
  // cryptsetup writes the primary, then the secondary: an update cut short
  // between the two leaves copies of different ages, and the newer counts.
  std::string img = Format("img");
  std::string old = Slurp(img);
  Cryptsetup("token add --key-description luks:data --key-slot 0", img);
  std::string now = Slurp(img);
  Overwrite(img, 0, old.substr(0, kSecondary));  // the primary from before
  ASSERT_EQ(Read(img), 0) << err_;
  EXPECT_EQ(header_.KeyringTokens("luks:data").size(), 1u);
  Overwrite(img, 0, now.substr(0, kSecondary));
  Overwrite(img, kSecondary, old.substr(kSecondary, kSecondary));  // the secondary from before
  ASSERT_EQ(Read(img), 0) << err_;
  EXPECT_EQ(header_.KeyringTokens("luks:data").size(), 1u);
}

TEST_F(Luks2HeaderTest, WhatIsNotLuks2IsRefused) {
  std::string img = dir_.path() + "/luks1";
  ASSERT_EQ(Sh("truncate -s 32M '" + img + "'"), 0);
  Cryptsetup("luksFormat --type luks1 --pbkdf-force-iterations 1000 --key-file '{key}'", img);
  EXPECT_EQ(Read(img), -EMEDIUMTYPE);
  EXPECT_EQ(err_, "'" + img + "' is a LUKS1 volume, not LUKS2");

  std::string zeros = dir_.path() + "/zeros";
  ASSERT_EQ(Sh("truncate -s 8M '" + zeros + "'"), 0);
  EXPECT_EQ(Read(zeros), -EMEDIUMTYPE);
  EXPECT_EQ(err_, "'" + zeros + "' is not a LUKS2 volume (no LUKS header)");

  // No magic at offset 0 is not LUKS2, even with the secondary intact.
  std::string wiped = Format("wiped");
  Overwrite(wiped, 0, std::string(6, '\0'));
  EXPECT_EQ(Read(wiped), -EMEDIUMTYPE) << err_;

  EXPECT_EQ(Read(dir_.path() + "/none"), -ENOENT);
  EXPECT_NE(err_.find("'" + dir_.path() + "/none'"), std::string::npos) << err_;
  EXPECT_EQ(Read(dir_.path()), -EMEDIUMTYPE);
  EXPECT_NE(err_.find("neither a block device nor a regular file"), std::string::npos) << err_;
  std::string fifo = dir_.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(Read(fifo), -EMEDIUMTYPE);  // and does not wait for a writer
}

TEST_F(Luks2HeaderTest, ATruncatedImageIsTooShort) {
  std::string img = Format("img");
  std::string all = Slurp(img);
  for (size_t size : {size_t{8192}, size_t{4095}, size_t{100}, size_t{3}, size_t{0}}) {
    std::string cut = dir_.Write("cut", all.substr(0, size));
    EXPECT_EQ(Read(cut), -EMEDIUMTYPE) << size;
    EXPECT_NE(err_.find("'" + cut + "' is too short for a LUKS2 header: it ends after " +
                        std::to_string(size)),
              std::string::npos)
        << err_;
  }
}

}  // namespace
}  // namespace hpcs
