#include "core/keystore.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>

#include "testing/test_doubles.h"

namespace hpcs {
namespace {

TEST(KeystoreTest, SkippedNames) {
  for (const char* n : {".hidden", ".luks:root.tmp1234", "key~", "key.tmp", "key.swp", "key.bak",
                        "key.dpkg-new", "key.rpmsave", "#key#", ""}) {
    EXPECT_TRUE(IsSkippedKeyFileName(n)) << n;
  }
  for (const char* n : {"luks:root", "data", "key.tmpl", "#key", "a~b"}) {
    EXPECT_FALSE(IsSkippedKeyFileName(n)) << n;
  }
}

TEST(KeystoreTest, ListsLogonThenUserSortedAndReportsOddEntries) {
  ScratchDir dir;
  dir.Write("user/zeta", "ct");
  dir.Write("user/alpha", "ct");
  dir.Write("logon/luks:dm", "ct");
  dir.Write("user/.alpha.tmp42", "ct");
  dir.Mkdir("user/subdir");
  std::vector<StoredKey> keys;
  std::vector<std::string> skipped;
  std::string err;
  ASSERT_EQ(ListStoredKeys(dir.path(), &keys, &skipped, &err), 0) << err;
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0].type, KeyType::kLogon);
  EXPECT_EQ(keys[1].desc, "alpha");
  EXPECT_EQ(keys[2].path, dir.path() + "/user/zeta");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0], dir.path() + "/user/subdir (not a regular file)");
}

TEST(KeystoreTest, MissingTypeDirectoriesAreNoError) {
  ScratchDir dir;
  std::vector<StoredKey> keys = {{KeyType::kUser, "stale", "/x"}};
  std::string err;
  ASSERT_EQ(ListStoredKeys(dir.path(), &keys, nullptr, &err), 0) << err;
  EXPECT_TRUE(keys.empty());
}

TEST(KeystoreTest, AnUnreadableTypeDirectoryIsAnErrorNamingIt) {
  ScratchDir dir;
  dir.Write("user", "a file where a directory belongs");
  std::vector<StoredKey> keys;
  std::string err;
  EXPECT_EQ(ListStoredKeys(dir.path(), &keys, nullptr, &err), -ENOTDIR);
  EXPECT_NE(err.find("'" + dir.path() + "/user' is not a directory"), std::string::npos) << err;
}

TEST(KeystoreTest, ReadsAWrappedKeyAsIbmWritesIt) {
  ScratchDir dir;
  std::string ct;
  std::string err;
  ASSERT_EQ(ReadWrappedKey(dir.Write("k", "  eyJjaXBoZXJ0ZXh0Ijoi==\r\n\n"), &ct, &err), 0) << err;
  EXPECT_EQ(ct, "eyJjaXBoZXJ0ZXh0Ijoi==");
}

TEST(KeystoreTest, RefusesEmptyBinaryMultiLineAndHugeFiles) {
  ScratchDir dir;
  std::string ct = "untouched", err;
  EXPECT_EQ(ReadWrappedKey(dir.Write("empty", " \n"), &ct, &err), -EINVAL);
  EXPECT_NE(err.find("' is empty"), std::string::npos) << err;
  EXPECT_EQ(ReadWrappedKey(dir.Write("bin", std::string("ab\0cd", 5)), &ct, &err), -EINVAL);
  EXPECT_NE(err.find("does not hold a wrapped key"), std::string::npos) << err;
  EXPECT_EQ(ReadWrappedKey(dir.Write("two", "line1\nline2\n"), &ct, &err), -EINVAL);
  EXPECT_EQ(ReadWrappedKey(dir.Write("huge", std::string(64 * 1024 + 1, 'A')), &ct, &err), -EFBIG);
  EXPECT_EQ(ReadWrappedKey(dir.path() + "/absent", &ct, &err), -ENOENT);
  EXPECT_EQ(ct, "untouched");
}

TEST(KeystoreTest, LingerMarkers) {
  ScratchDir dir;
  dir.Write("linger/logon/luks:keep", "");
  EXPECT_TRUE(HasLingerMarker(dir.path(), KeyType::kLogon, "luks:keep"));
  EXPECT_FALSE(HasLingerMarker(dir.path(), KeyType::kUser, "luks:keep"));
  EXPECT_FALSE(HasLingerMarker(dir.path(), KeyType::kLogon, "other"));
}

}  // namespace
}  // namespace hpcs
