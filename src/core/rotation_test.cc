#include "core/rotation.h"

#include <gtest/gtest.h>

#include "core/keystore.h"
#include "core/unlock.h"
#include "testing/versioned_kms_testing.h"

namespace hpcs {
namespace {

class RotationTest : public testing::Test {
 protected:
  // A wrapped key for `plain` under root key "crk"; its path.
  std::string Store(const std::string& desc, std::string_view plain) {
    return dir_.Write("user/" + desc, f_.kms.Wrap("crk", plain) + "\n");
  }
  std::string Read(const std::string& path) {
    std::string ct;
    EXPECT_EQ(ReadWrappedKey(path, &ct, nullptr), 0);
    return ct;
  }
  std::vector<KeyOutcome> Unlock(bool update) {
    UnlockRequest req{dir_.path(), "crk", {}};
    req.update_wrapped = update;
    std::vector<KeyOutcome> out;
    std::string err;
    EXPECT_EQ(UnlockKeys(req, f_.kp, keyring_, &out, &err), 0) << err;
    return out;
  }

  VersionedKmsFixture f_;
  FakeKeyring keyring_;
  ScratchDir dir_;
};

TEST_F(RotationTest, StoresTheNewerWrappingOnceItUnwrapsToTheSameBytes) {
  std::string a = Store("luks:a", "secret-a"), b = Store("luks:b", "secret-b");
  f_.kms.Rotate("crk");
  auto out = Unlock(true);
  ASSERT_EQ(out.size(), 2u);
  for (const auto& o : out) {
    EXPECT_EQ(o.result, 0) << o.error;
    EXPECT_TRUE(o.updated) << o.update_error;
  }
  EXPECT_EQ(Read(a), f_.kms.Wrap("crk", "secret-a"));
  EXPECT_EQ(Read(b), f_.kms.Wrap("crk", "secret-b"));
  EXPECT_EQ(Read(a).substr(0, 7), "crk.v2.");
  struct stat st;
  ASSERT_EQ(stat(a.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Two unwraps of the old wrappings, then two of the new ones (the check).
  EXPECT_EQ(f_.kms.calls,
            (std::vector<std::string>{"unwrap crk", "unwrap crk", "unwrap crk", "unwrap crk"}));
  // Current now: nothing more to store.
  f_.kms.calls.clear();
  out = Unlock(true);
  EXPECT_FALSE(out[0].updated);
  EXPECT_EQ(f_.kms.calls.size(), 2u);
}

TEST_F(RotationTest, NothingIsStoredWhenNotAskedOrWhenTheCheckFails) {
  std::string a = Store("luks:a", "secret-a");
  std::string before = Read(a);
  f_.kms.Rotate("crk");
  auto out = Unlock(false);
  EXPECT_FALSE(out[0].updated);
  EXPECT_EQ(Read(a), before);
  EXPECT_EQ(f_.kms.calls.size(), 1u);
  // The check (the second unwrap) answers other bytes.
  f_.kms.spoil_from = 1;
  out = Unlock(true);
  EXPECT_EQ(out[0].result, 0);
  EXPECT_FALSE(out[0].updated);
  EXPECT_EQ(out[0].update_error, "the newer wrapping unwraps to other bytes");
  EXPECT_EQ(Read(a), before);
}

TEST_F(RotationTest, AFileChangedMeanwhileIsLeftAlone) {
  std::string a = Store("luks:a", "secret-a");
  f_.kms.Rotate("crk");
  std::vector<RotatedKey> keys(1);
  keys[0].path = a;
  keys[0].old_ciphertext = "something else";
  keys[0].new_ciphertext = f_.kms.Wrap("crk", "secret-a");
  keys[0].plaintext = Secret::FromString("secret-a");
  std::string before = Read(a);
  StoreRotatedKeys(f_.kp, "crk", dir_.path(), std::chrono::milliseconds(0), &keys);
  EXPECT_EQ(keys[0].result, -EAGAIN);
  EXPECT_NE(keys[0].error.find("changed meanwhile"), std::string::npos) << keys[0].error;
  EXPECT_EQ(Read(a), before);
  EXPECT_TRUE(keys[0].plaintext.empty());
}

TEST_F(RotationTest, AnotherWriterHoldingTheKeyDirectoryLeavesTheFileAlone) {
  // rewrap --to-crk (or hpcs-enroll) between its read and its write: the
  // store must not slip a wrapping of the old root key in between.
  std::string a = Store("luks:a", "secret-a");
  std::string before = Read(a);
  f_.kms.Rotate("crk");
  FlockHolder other(dir_.path() + "/.lock");
  auto out = Unlock(true);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].result, 0) << out[0].error;  // the key is loaded all the same
  EXPECT_FALSE(out[0].updated);
  EXPECT_EQ(Read(a), before);
  EXPECT_NE(out[0].update_error.find("'" + dir_.path() +
                                     "/.lock' is held by another writer of the key directory"),
            std::string::npos)
      << out[0].update_error;
  // Once it is free, the next run stores it.
  other.Release();
  out = Unlock(true);
  EXPECT_TRUE(out[0].updated) << out[0].update_error;
  EXPECT_EQ(Read(a), f_.kms.Wrap("crk", "secret-a"));
}

TEST(RotationDecisionTest, NeverInAnInitramfsAndOnlyWhenConfigured) {
  ScratchDir d;
  std::string release = d.Write("initrd-release", "NAME=dracut\n");
  EXPECT_FALSE(MayUpdateWrappedKeys(true, release));
  EXPECT_TRUE(MayUpdateWrappedKeys(true, d.path() + "/no-such-file"));
  EXPECT_FALSE(MayUpdateWrappedKeys(false, d.path() + "/no-such-file"));
}

}  // namespace
}  // namespace hpcs
