#include "admin/rewrap.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
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
    StagedFiles staged(dir_.path());
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
  StagedFiles staged(dir_.path());
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
    StagedFiles staged(dir_.path());
    std::string err;
    ASSERT_EQ(staged.Stage(a, "x\n", 0600, &err), 0) << err;
    EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/user/.luks:a.staged"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/user/.luks:a.staged"));
  EXPECT_EQ(Read(a), f_.kms.Wrap("crk", "secret-a"));
}

// The real file operations, except that the rename numbered fail_rename
// fails once (EIO), or that at the step numbered crash_at the process
// "dies": that step and every later one do nothing.
class FaultyOps : public FileOps {
 public:
  int fail_rename = -1;
  int crash_at = -1;
  int steps = 0, renames = 0;

  int Write(const std::string& path, std::string_view data, mode_t mode,
            std::string* err) override {
    if (Dead()) return Fail(err, -EIO, "crashed");
    return FileOps::Write(path, data, mode, err);
  }
  int Link(const std::string& from, const std::string& to) override {
    return Dead() ? -EIO : FileOps::Link(from, to);
  }
  int Rename(const std::string& from, const std::string& to) override {
    if (Dead()) return -EIO;
    if (renames++ == fail_rename) return -EIO;
    return FileOps::Rename(from, to);
  }
  int Unlink(const std::string& path) override { return Dead() ? -EIO : FileOps::Unlink(path); }
  int SyncDir(const std::string& dir) override { return Dead() ? -EIO : FileOps::SyncDir(dir); }

 private:
  bool Dead() {
    int step = steps++;
    return crash_at >= 0 && step >= crash_at;
  }
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(none)";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Two keys in the key directory, a sealed API key that does not exist yet
// and the config (last), each staged with new contents, as a move does.
class CommitTest : public testing::Test {
 protected:
  void SetUp() override {
    paths_ = {dir_.Write("keys/user/luks:a", "old-a\n"), dir_.Write("keys/user/luks:b", "old-b\n"),
              dir_.path() + "/etc/api-key-blob.txt", dir_.Write("etc/hpcs.ini", "old-config\n")};
  }
  std::string KeyDir() { return dir_.path() + "/keys"; }
  // Stages every file; false when a step failed (as MoveKeys, it stops).
  bool StageAll(StagedFiles& staged) {
    for (const auto& p : paths_) {
      std::string err;
      if (staged.Stage(p, "new " + p + "\n", 0600, &err) < 0) return false;
    }
    return true;
  }
  std::vector<std::string> Contents() {
    std::vector<std::string> c;
    for (const auto& p : paths_) c.push_back(Slurp(p));
    return c;
  }
  std::vector<std::string> Old() { return {"old-a\n", "old-b\n", "(none)", "old-config\n"}; }
  std::vector<std::string> New() {
    std::vector<std::string> c;
    for (const auto& p : paths_) c.push_back("new " + p + "\n");
    return c;
  }
  // The hidden files left: staged copies, old links, the journal.
  std::vector<std::string> Leftovers() {
    std::vector<std::string> left;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_.path())) {
      if (e.path().filename().string()[0] == '.') left.push_back(e.path());
    }
    return left;
  }

  ScratchDir dir_;
  std::vector<std::string> paths_;
};

TEST_F(CommitTest, EveryFileInPlaceAndNothingLeftBehind) {
  StagedFiles staged(KeyDir());
  ASSERT_TRUE(StageAll(staged));
  EXPECT_EQ(Contents(), Old());  // staged, not yet in place
  std::string err;
  ASSERT_EQ(staged.Commit(&err), 0) << err;
  EXPECT_EQ(Contents(), New());
  EXPECT_EQ(Leftovers(), std::vector<std::string>{});
}

TEST_F(CommitTest, AFailedRenameAtAnyPositionPutsEveryFileBack) {
  for (int k = 0; k < 4; ++k) {
    SCOPED_TRACE("rename " + std::to_string(k) + " fails");
    SetUp();  // the old contents again
    std::filesystem::remove(paths_[2]);
    FaultyOps ops;
    ops.fail_rename = k;
    StagedFiles staged(KeyDir(), &ops);
    ASSERT_TRUE(StageAll(staged));
    std::string err;
    EXPECT_LT(staged.Commit(&err), 0);
    EXPECT_NE(err.find("cannot put '" + paths_[k] + "' in place"), std::string::npos) << err;
    EXPECT_NE(err.find("every file was put back as it was"), std::string::npos) << err;
    EXPECT_EQ(Contents(), Old());
    EXPECT_EQ(Leftovers(), std::vector<std::string>{});
    Recovery what;
    EXPECT_EQ(RecoverStaged(KeyDir(), &what, &err), 0) << err;
    EXPECT_EQ(what, Recovery::kNone);
  }
}

TEST_F(CommitTest, ACrashAtAnyStepThenARecoveryFinishesOrUndoesIt) {
  int total;
  {  // Count every step of a whole run: stage and commit.
    FaultyOps count;
    count.crash_at = 1 << 30;
    StagedFiles staged(KeyDir(), &count);
    ASSERT_TRUE(StageAll(staged));
    std::string err;
    ASSERT_EQ(staged.Commit(&err), 0) << err;
    total = count.steps;
  }
  ASSERT_GT(total, 20);
  int finished = 0, undone = 0;
  for (int step = 0; step <= total; ++step) {
    SCOPED_TRACE("crash at step " + std::to_string(step) + " of " + std::to_string(total));
    SetUp();
    std::filesystem::remove(paths_[2]);
    {
      FaultyOps ops;
      ops.crash_at = step;
      StagedFiles staged(KeyDir(), &ops);
      std::string err;
      if (StageAll(staged)) staged.Commit(&err);
    }  // the destructor's clean-up runs "after the crash" too: it does nothing
    Recovery what;
    std::string err;
    ASSERT_EQ(RecoverStaged(KeyDir(), &what, &err), 0) << err;
    // Finished (by the run, whose last steps only remove the journal, or by
    // the recovery) or undone, never a mix.
    std::vector<std::string> now = Contents();
    if (what == Recovery::kFinished) {
      EXPECT_EQ(now, New());
    }
    if (what == Recovery::kRolledBack) {
      EXPECT_EQ(now, Old());
    }
    if (now == New()) {
      ++finished;
    } else {
      EXPECT_EQ(now, Old());
      ++undone;
    }
    EXPECT_EQ(Leftovers(), std::vector<std::string>{});
    // A second recovery finds nothing to do.
    EXPECT_EQ(RecoverStaged(KeyDir(), &what, &err), 0) << err;
    EXPECT_EQ(what, Recovery::kNone);
  }
  EXPECT_GT(finished, 0);
  EXPECT_GT(undone, 0);
}

TEST_F(CommitTest, ACrashDuringTheRollbackOfAFailedRenameIsFinishedByTheRecovery) {
  // The third rename fails; the process then dies at each later step (of the
  // commit and of its rollback).
  for (int extra = 0; extra < 24; ++extra) {
    SCOPED_TRACE("crash at step " + std::to_string(extra) + " of the commit");
    SetUp();
    std::filesystem::remove(paths_[2]);
    FaultyOps ops;
    ops.fail_rename = 2;
    ops.crash_at = 1 << 30;
    StagedFiles staged(KeyDir(), &ops);
    ASSERT_TRUE(StageAll(staged));
    ops.crash_at = ops.steps + extra;
    std::string err;
    EXPECT_LT(staged.Commit(&err), 0);
    Recovery what;
    ASSERT_EQ(RecoverStaged(KeyDir(), &what, &err), 0) << err;
    EXPECT_EQ(Contents(), what == Recovery::kFinished ? New() : Old());
    EXPECT_EQ(Leftovers(), std::vector<std::string>{});
  }
}

TEST_F(CommitTest, AJournalLeftBehindStopsANewStaging) {
  {
    FaultyOps ops;
    ops.fail_rename = 1;
    ops.crash_at = 1 << 30;
    StagedFiles staged(KeyDir(), &ops);
    ASSERT_TRUE(StageAll(staged));
    std::string err;
    ops.crash_at = ops.steps + 4;  // after the journal and the first rename
    staged.Commit(&err);
  }
  StagedFiles again(KeyDir());
  std::string err;
  EXPECT_EQ(again.Stage(paths_[0], "x", 0600, &err), -EBUSY);
  EXPECT_NE(err.find("interrupted rewrap --to-crk"), std::string::npos) << err;
  Recovery what;
  ASSERT_EQ(RecoverStaged(KeyDir(), &what, &err), 0) << err;
  EXPECT_EQ(what, Recovery::kFinished);
  EXPECT_EQ(Contents()[0], New()[0]);
}

// A move to an instance whose config holds a literal API key: the main
// config, 0644 while it said api_key = TPM, is written 0600.
TEST(StageMovedConfigTest, AConfigThatWillHoldALiteralApiKeyIsWritten0600) {
  ScratchDir dir;
  std::string main = dir.Write(
      "hpcs.ini",
      "[KP]\napi_key = TPM\ndefault_crk_uuid = old\n[HFL]\nkey_dir = " + dir.path() + "/keys\n",
      0644);
  std::string other = dir.Write("other.ini", "[KP]\napi_key = literal-42\n", 0600);
  Config config, target;
  std::string err;
  ASSERT_EQ(LoadConfig(main, &config, &err), 0) << err;
  ASSERT_EQ(LoadConfig(other, &target, &err), 0) << err;
  {
    StagedFiles staged(dir.path());
    bool tightened = false;
    ASSERT_EQ(StageMovedConfig(config, nullptr, "new", &staged, &tightened, &err), 0) << err;
    EXPECT_FALSE(tightened);
    ASSERT_EQ(staged.Commit(&err), 0) << err;
    struct stat st;
    ASSERT_EQ(stat(main.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);  // no API key in it: its mode kept
  }
  StagedFiles staged(dir.path());
  bool tightened = false;
  ASSERT_EQ(StageMovedConfig(config, &target, "new", &staged, &tightened, &err), 0) << err;
  EXPECT_TRUE(tightened);
  ASSERT_EQ(staged.Commit(&err), 0) << err;
  EXPECT_NE(Slurp(main).find("api_key = literal-42"), std::string::npos) << Slurp(main);
  struct stat st;
  ASSERT_EQ(stat(main.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

}  // namespace
}  // namespace hpcs
