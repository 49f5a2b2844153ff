#include "base/secret.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <string>
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

TEST(SecretTest, DisableCoreDumps) {
  DisableCoreDumps();
  EXPECT_EQ(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
  struct rlimit r;
  ASSERT_EQ(getrlimit(RLIMIT_CORE, &r), 0);
  EXPECT_EQ(r.rlim_cur, 0u);
}

}  // namespace
}  // namespace hpcs
