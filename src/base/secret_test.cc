#include "base/secret.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace hpcs {
namespace {

TEST(SecretTest, AppendGrowMoveAndCompare) {
  Secret a = Secret::FromString("abc");
  for (int i = 0; i < 100; ++i) a.Append("0123456789");
  EXPECT_EQ(a.size(), 1003u);
  EXPECT_EQ(a.view().substr(0, 4), "abc0");
  Secret b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(b.size(), 1003u);
  Secret c(b.data(), b.size());
  EXPECT_TRUE(b.Equals(c));
  c.data()[5] ^= 1;
  EXPECT_FALSE(b.Equals(c));
  c.Truncate(3);
  EXPECT_EQ(c.view(), "abc");
}

TEST(SecretTest, BinarySafe) {
  const unsigned char raw[] = {0, 1, 0, 0xff, '\n'};
  Secret s(raw, sizeof raw);
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s.data()[3], 0xff);
  EXPECT_EQ(std::to_integer<int>(s.bytes()[4]), '\n');
}

// Every block a Secret released, as it was at the moment of release.
std::vector<std::string> g_released;

void Record(const unsigned char* block, size_t size) {
  g_released.emplace_back(reinterpret_cast<const char*>(block), size);
}

class SecretReleaseTest : public testing::Test {
 protected:
  void SetUp() override {
    g_released.clear();
    SetSecretReleaseObserverForTesting(Record);
  }
  void TearDown() override { SetSecretReleaseObserverForTesting(nullptr); }
  static bool AllZero(const std::string& block) {
    return block.find_first_not_of('\0') == std::string::npos;
  }
};

constexpr char kPassphrase[] = "correct-horse-Qx81-battery";

TEST_F(SecretReleaseTest, ClearWipesBeforeFreeing) {
  Secret s = Secret::FromString(kPassphrase);
  s.Clear();
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.data(), nullptr);
  ASSERT_EQ(g_released.size(), 1u);
  EXPECT_GE(g_released[0].size(), sizeof kPassphrase - 1);
  EXPECT_TRUE(AllZero(g_released[0]));
}

TEST_F(SecretReleaseTest, DestructorAndGrowthWipeToo) {
  {
    Secret s = Secret::FromString(kPassphrase);
    for (int i = 0; i < 10; ++i) s.Append(kPassphrase);  // outgrows its first block
  }
  ASSERT_GE(g_released.size(), 2u);  // the old blocks and the last one
  for (const auto& b : g_released) EXPECT_TRUE(AllZero(b));
}

TEST_F(SecretReleaseTest, MovedFromGivesNothingBack) {
  Secret a = Secret::FromString(kPassphrase);
  Secret b = std::move(a);
  a.Clear();  // NOLINT(bugprone-use-after-move): empty, nothing to release
  EXPECT_TRUE(g_released.empty());
  EXPECT_EQ(b.view(), kPassphrase);
}

// Whether the kernel has the page holding p locked: the VmFlags of its
// mapping in /proc/self/smaps include "lo" (VM_LOCKED). mincore cannot tell.
bool PageLocked(const void* p) {
  auto addr = reinterpret_cast<uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t from = 0, to = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> from >> dash >> to && dash == '-' && line.find(':') > line.find(' ')) {
      inside = from <= addr && addr < to;
    } else if (inside && line.starts_with("VmFlags:")) {
      return (line + " ").find(" lo ") != std::string::npos;
    }
  }
  return false;
}

uintptr_t PageOf(const void* p) {
  return reinterpret_cast<uintptr_t>(p) & ~(static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)) - 1);
}

TEST(SecretLockTest, FreeingOneSecretLeavesTheOthersOnItsPageLocked) {
  // Small blocks share pages of the heap: find two on one page.
  std::vector<Secret> secrets;
  std::map<uintptr_t, size_t> first_on;
  size_t a = 0, b = 0;
  for (size_t i = 0; i < 256 && a == b; ++i) {
    secrets.push_back(Secret::FromString(kPassphrase));
    auto [it, fresh] = first_on.emplace(PageOf(secrets[i].data()), i);
    if (!fresh) std::tie(a, b) = std::pair(it->second, i);
  }
  ASSERT_NE(a, b) << "no two blocks on one page";
  if (!PageLocked(secrets[a].data())) {
    GTEST_SKIP() << "mlock is refused here (RLIMIT_MEMLOCK; run as root)";
  }
  secrets[b].Clear();
  EXPECT_TRUE(PageLocked(secrets[a].data())) << "freeing a neighbour unlocked a live secret";
  EXPECT_EQ(secrets[a].view(), kPassphrase);
}

TEST(SecretLockTest, AfterLockAllMemoryAFreedSecretLeavesItsPageLocked) {
  if (LockAllMemory() != 0)
    GTEST_SKIP() << "mlockall is refused here (RLIMIT_MEMLOCK; run as root)";
  Secret s = Secret::FromString(kPassphrase);
  const unsigned char* p = s.data();
  ASSERT_TRUE(PageLocked(p));
  s.Clear();
  EXPECT_TRUE(PageLocked(p)) << "a freed secret undid mlockall for its page";
  // Memory allocated after it is locked too, wherever it lands.
  std::string later(3 * static_cast<size_t>(sysconf(_SC_PAGESIZE)), 'x');
  EXPECT_TRUE(PageLocked(later.data() + later.size() / 2));
  UnlockAllMemoryForTesting();
}

TEST(SecretTest, DisableCoreDumps) {
  DisableCoreDumps();
  EXPECT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
  struct rlimit r;
  ASSERT_EQ(getrlimit(RLIMIT_CORE, &r), 0);
  EXPECT_EQ(r.rlim_cur, 0u);
}

}  // namespace
}  // namespace hpcs
