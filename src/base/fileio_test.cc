#include "base/fileio.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "testing/test_doubles.h"

namespace hpcs {
namespace {

TEST(FileioTest, ReadsARegularFileWithItsMetadata) {
  ScratchDir dir;
  std::string path = dir.Write("f", "hello", 0640);
  std::string text, err;
  struct stat st {};
  ASSERT_EQ(ReadRegularFile(path, 5, &text, &st, &err), 0) << err;
  EXPECT_EQ(text, "hello");
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  Secret s;
  ASSERT_EQ(ReadRegularFileSecret(path, 5, &s, nullptr, &err), 0) << err;
  EXPECT_EQ(s.view(), "hello");
}

TEST(FileioTest, RefusesWhatIsNotARegularFileOrTooLarge) {
  ScratchDir dir;
  std::string text = "untouched", err;
  EXPECT_EQ(ReadRegularFile(dir.path(), 100, &text, nullptr, &err), -EINVAL);
  EXPECT_EQ(err, "'" + dir.path() + "' is not a regular file");
  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(ReadRegularFile(fifo, 100, &text, nullptr, &err), -EINVAL);  // and does not hang
  EXPECT_EQ(ReadRegularFile(dir.Write("big", "123456"), 5, &text, nullptr, &err), -EFBIG);
  EXPECT_NE(err.find("is larger than 5 bytes"), std::string::npos) << err;
  EXPECT_EQ(ReadRegularFile(dir.path() + "/none", 5, &text, nullptr, &err), -ENOENT);
  EXPECT_EQ(err, "cannot open '" + dir.path() + "/none': No such file or directory");
  EXPECT_EQ(text, "untouched");
}

TEST(FileioTest, WritesAtomicallyWithTheModeAndLeavesNoTemporaryFile) {
  ScratchDir dir;
  std::string path = dir.Write("blob", "old", 0644);
  mode_t old_umask = umask(0);
  std::string err;
  int r = WriteFileAtomic(path, "new contents", 0600, &err);
  umask(old_umask);
  ASSERT_EQ(r, 0) << err;
  std::string text;
  struct stat st {};
  ASSERT_EQ(ReadRegularFile(path, 100, &text, &st, &err), 0) << err;
  EXPECT_EQ(text, "new contents");
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "blob");
  }
  EXPECT_EQ(entries, 1);
}

TEST(FileioTest, TheModeIsExactWhateverTheUmask) {
  ScratchDir dir;
  std::string path = dir.path() + "/public";
  mode_t old_umask = umask(077);
  std::string err;
  int r = WriteFileAtomic(path, "x", 0644, &err);
  umask(old_umask);
  ASSERT_EQ(r, 0) << err;
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(FileioTest, AFailedWriteNamesTheFile) {
  ScratchDir dir;
  std::string err;
  std::string path = dir.path() + "/no/such/dir/blob";
  EXPECT_EQ(WriteFileAtomic(path, "x", 0600, &err), -ENOENT);
  EXPECT_NE(err.find(dir.path() + "/no/such/dir/.blob.tmp"), std::string::npos) << err;
}

TEST(FileioTest, DescriptorsWholeAndCapped) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string err;
  ASSERT_EQ(WriteAllFd(fds[1], "0123456789", &err), 0) << err;
  close(fds[1]);
  Secret in;
  EXPECT_EQ(ReadAllFd(fds[0], 9, &in, &err), -EFBIG);
  EXPECT_EQ(err, "input larger than 9 bytes");
  EXPECT_TRUE(in.empty());
  close(fds[0]);
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(WriteAllFd(fds[1], std::string_view("a\0b", 3), &err), 0) << err;
  close(fds[1]);
  ASSERT_EQ(ReadAllFd(fds[0], 3, &in, &err), 0) << err;
  EXPECT_EQ(in.view(), std::string_view("a\0b", 3));
  close(fds[0]);
}

// --- Files we take instructions from (issue 10, item 5)

struct stat StatOf(uid_t uid, mode_t mode) {
  struct stat st {};
  st.st_uid = uid;
  st.st_mode = S_IFREG | mode;
  return st;
}

TEST(FileTrustTest, RootsFileNotWritableByOthersIsTrusted) {
  std::string err;
  EXPECT_EQ(CheckTrusted("/etc/f", StatOf(0, 0600), &err), 0);
  EXPECT_EQ(CheckTrusted("/etc/f", StatOf(0, 0644), &err), 0);
  EXPECT_EQ(CheckTrusted("/etc/f", StatOf(geteuid(), 0600), &err), 0);
}

TEST(FileTrustTest, GroupOrOtherWritableIsRefusedNamingTheChmod) {
  for (mode_t mode : {0620, 0602, 0666, 0777, 01777}) {
    std::string err;
    EXPECT_EQ(CheckTrusted("/etc/f", StatOf(0, mode), &err), -EPERM) << mode;
    char m[8];
    snprintf(m, sizeof m, "%04o", static_cast<unsigned>(mode));
    EXPECT_EQ(err, std::string("'/etc/f' is writable by group or others (mode ") + m +
                       "), so they could change it (fix: chmod go-w '/etc/f')");
  }
}

TEST(FileTrustTest, AnotherUsersFileIsRefusedNamingTheChown) {
  std::string err;
  uid_t me = geteuid(), other = me == 65534 ? 65533 : 65534;
  EXPECT_EQ(CheckTrusted("/etc/f", StatOf(other, 0600), &err), -EPERM);
  EXPECT_EQ(err, "'/etc/f' is owned by uid " + std::to_string(other) + ", not root" +
                     (me != 0 ? " or uid " + std::to_string(me) : "") +
                     ", so that user could change it (fix: chown root:root '/etc/f')");
}

TEST(FileTrustTest, ReadTrustedFileRefusesSymbolicLinksWhenAsked) {
  ScratchDir dir;
  std::string target = dir.Write("target", "ciphertext");
  std::string link = dir.path() + "/link";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  std::string text = "untouched", err;
  EXPECT_EQ(ReadTrustedFile(link, 100, Follow::kNo, &text, nullptr, &err), -ELOOP);
  EXPECT_EQ(err, "'" + link + "' is a symbolic link, which is not followed (put the file there)");
  EXPECT_EQ(text, "untouched");
  ASSERT_EQ(ReadTrustedFile(link, 100, Follow::kYes, &text, nullptr, &err), 0) << err;
  EXPECT_EQ(text, "ciphertext");
  chmod(target.c_str(), 0620);
  EXPECT_EQ(ReadTrustedFile(link, 100, Follow::kYes, &text, nullptr, &err), -EPERM);
  EXPECT_NE(err.find("chmod go-w '" + link + "'"), std::string::npos) << err;
}

}  // namespace
}  // namespace hpcs
