#include "fileio.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "test_doubles.h"

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

}  // namespace
}  // namespace hpcs
