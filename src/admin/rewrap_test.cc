#include "admin/rewrap.h"

#include <gtest/gtest.h>

#include "testing/versioned_kms_testing.h"

namespace hpcs {
namespace {

class RewrapTest : public testing::Test {
 protected:
  std::string Store(const std::string& desc, std::string_view plain, const char* crk = "crk") {
    return dir_.Write("user/" + desc, f_.kms.Wrap(crk, plain) + "\n");
  }
  std::string Read(const std::string& path) {
    std::string ct;
    EXPECT_EQ(ReadWrappedKey(path, &ct, nullptr), 0);
    return ct;
  }

  VersionedKmsFixture f_;
  ScratchDir dir_;
};

TEST_F(RewrapTest, RewrapsWhatIsOldLeavesWhatIsCurrentAndGoesOnAfterAFailure) {
  std::string a = Store("luks:a", "secret-a");
  std::string bad = dir_.Write("user/luks:bad", "other.v1.eA==\n");
  f_.kms.Rotate("crk");
  std::string c = Store("luks:c", "secret-c");  // already at v2
  std::string c_before = Read(c);
  std::vector<RewrapOutcome> out;
  std::string err;
  ASSERT_EQ(RewrapKeys(f_.kp, dir_.path(), "crk", &out, &err), 0) << err;
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].result, 0) << out[0].error;
  EXPECT_TRUE(out[0].changed);
  EXPECT_EQ(out[0].old_version, "v1");
  EXPECT_EQ(out[0].new_version, "v2");
  EXPECT_EQ(Read(a), f_.kms.Wrap("crk", "secret-a"));
  EXPECT_LT(out[1].result, 0);
  EXPECT_NE(out[1].error.find("cannot rewrap '" + bad + "'"), std::string::npos) << out[1].error;
  EXPECT_EQ(out[2].result, 0);
  EXPECT_FALSE(out[2].changed);
  EXPECT_EQ(Read(c), c_before);
  // Only rewraps: the plaintext never came out. The changed key's new
  // ciphertext was rewrapped once more as its check.
  for (const auto& call : f_.kms.calls) EXPECT_EQ(call, "rewrap crk");
  EXPECT_EQ(f_.kms.calls.size(), 4u);
}

TEST_F(RewrapTest, MoveStagesEveryKeyOnlyWhenEveryKeyMadeIt) {
  std::string a = Store("luks:a", "secret-a"), b = Store("luks:b", "secret-b");
  std::vector<RewrapOutcome> out;
  std::string err;
  {
    StagedFiles staged;
    ASSERT_EQ(MoveKeys(f_.kp, "crk", f_.kp, "new", dir_.path(), &staged, &out, &err), 0) << err;
    // Staged, not yet in place.
    EXPECT_EQ(Read(a), f_.kms.Wrap("crk", "secret-a"));
    ASSERT_EQ(staged.Commit(&err), 0) << err;
  }
  EXPECT_EQ(Read(a), f_.kms.Wrap("new", "secret-a"));
  EXPECT_EQ(Read(b), f_.kms.Wrap("new", "secret-b"));
  EXPECT_EQ(out[0].old_version, "v1");
  EXPECT_EQ(out[0].new_version, "v1");
  EXPECT_EQ(std::vector<std::string>(f_.kms.calls.begin() + 2, f_.kms.calls.end()),
            (std::vector<std::string>{"wrap new", "wrap new", "unwrap new", "unwrap new"}));

  // The round trip gives other bytes for one key: nothing is staged.
  f_.kms.calls.clear();
  f_.kms.spoil_from = 3;  // the second check
  StagedFiles staged;
  EXPECT_EQ(MoveKeys(f_.kp, "new", f_.kp, "third", dir_.path(), &staged, &out, &err), -1);
  EXPECT_EQ(out[0].result, 0);
  EXPECT_EQ(out[1].result, -EBADMSG);
  EXPECT_NE(out[1].error.find("unwraps to other bytes"), std::string::npos);
  EXPECT_FALSE(out[0].changed);
  EXPECT_EQ(staged.Commit(&err), 0);  // nothing to commit
  EXPECT_EQ(Read(a), f_.kms.Wrap("new", "secret-a"));
}

TEST_F(RewrapTest, UncommittedStagingLeavesNoFileBehind) {
  std::string a = Store("luks:a", "secret-a");
  {
    StagedFiles staged;
    std::string err;
    ASSERT_EQ(staged.Stage(a, "x\n", 0600, &err), 0) << err;
    EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/user/.luks:a.staged"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/user/.luks:a.staged"));
  EXPECT_EQ(Read(a), f_.kms.Wrap("crk", "secret-a"));
}

}  // namespace
}  // namespace hpcs
