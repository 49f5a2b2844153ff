#include "core/key_dir_lock.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <fstream>
#include <thread>
#include <vector>

#include "core/keystore.h"
#include "testing/test_doubles.h"

namespace hpcs {
namespace {

using std::chrono::milliseconds;

std::string Contents(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(KeyDirLockTest, TheHolderMarksTheFileWithItsPidAndItIsNoKey) {
  ScratchDir dir;
  dir.Mkdir("user");
  KeyDirLock lock;
  std::string err;
  ASSERT_EQ(LockKeyDir(dir.path(), milliseconds(0), &lock, &err), 0) << err;
  EXPECT_TRUE(lock.held());
  EXPECT_EQ(lock.path(), dir.path() + "/.lock");
  EXPECT_EQ(Contents(lock.path()).rfind(std::to_string(getpid()) + " ", 0), 0u);
  struct stat st;
  ASSERT_EQ(stat(lock.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::vector<StoredKey> keys;
  ASSERT_EQ(ListStoredKeys(dir.path(), &keys, nullptr, &err), 0) << err;
  EXPECT_TRUE(keys.empty());
  lock.Release();
  EXPECT_FALSE(lock.held());
  ASSERT_EQ(LockKeyDir(dir.path(), milliseconds(0), &lock, &err), 0) << err;
}

TEST(KeyDirLockTest, ASecondWriterWaitsThenGivesUpNamingTheLockAndItsHolder) {
  ScratchDir dir;
  FlockHolder other(KeyDirLockPath(dir.path()));
  // What a holder of ours writes into the file.
  dir.Write(".lock", std::to_string(other.pid()) + " hpcs-enroll\n");
  KeyDirLock lock;
  std::string err;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(LockKeyDir(dir.path(), milliseconds(300), &lock, &err), -EWOULDBLOCK);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(300));
  EXPECT_FALSE(lock.held());
  EXPECT_EQ(err, "'" + dir.path() + "/.lock' is held by another writer of the key directory (pid " +
                     std::to_string(other.pid()) + ", hpcs-enroll); waited 300 ms");
  // One try only; a holder that left no mark (or a stale one) is not named.
  dir.Write(".lock", "999999999 gone\n");
  EXPECT_EQ(LockKeyDir(dir.path(), milliseconds(0), &lock, &err), -EWOULDBLOCK);
  EXPECT_EQ(err, "'" + dir.path() + "/.lock' is held by another writer of the key directory");
  // Once it is released, the waiter gets it.
  std::thread release([&] {
    std::this_thread::sleep_for(milliseconds(200));
    other.Release();
  });
  EXPECT_EQ(LockKeyDir(dir.path(), milliseconds(5000), &lock, &err), 0) << err;
  release.join();
  EXPECT_TRUE(lock.held());
}

TEST(KeyDirLockTest, WritersThatRaceLoseNoUpdate) {
  // Each writer reads a counter, thinks, and writes it back plus one: without
  // the lock, two read the same value and one update is lost.
  ScratchDir dir;
  std::string counter = dir.Write("counter", "0");
  constexpr int kWriters = 4, kRounds = 5;
  std::vector<std::thread> writers;
  std::vector<int> failures(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kRounds; ++i) {
        KeyDirLock lock;
        if (LockKeyDir(dir.path(), milliseconds(10'000), &lock, nullptr) < 0) {
          ++failures[w];
          continue;
        }
        int n = std::stoi(Contents(counter));
        std::this_thread::sleep_for(milliseconds(5));
        std::ofstream(counter, std::ios::trunc) << n + 1;
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures, std::vector<int>(kWriters, 0));
  EXPECT_EQ(Contents(counter), std::to_string(kWriters * kRounds));
}

TEST(KeyDirLockTest, ALockFileThatIsNoRegularFileIsRefused) {
  ScratchDir dir;
  std::string target = dir.Write("elsewhere", "");
  ASSERT_EQ(symlink(target.c_str(), (dir.path() + "/.lock").c_str()), 0);
  KeyDirLock lock;
  std::string err;
  EXPECT_EQ(LockKeyDir(dir.path(), milliseconds(0), &lock, &err), -ELOOP);
  EXPECT_NE(err.find("cannot open the lock file '" + dir.path() + "/.lock'"), std::string::npos)
      << err;
  ScratchDir other;
  other.Mkdir(".lock");
  EXPECT_LT(LockKeyDir(other.path(), milliseconds(0), &lock, &err), 0);
  EXPECT_FALSE(lock.held());
  EXPECT_EQ(LockKeyDir(other.path() + "/missing", milliseconds(0), &lock, &err), -ENOENT);
}

}  // namespace
}  // namespace hpcs
