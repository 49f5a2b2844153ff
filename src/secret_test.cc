#include "secret.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <utility>

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

TEST(SecretTest, ClearWipes) {
  Secret s = Secret::FromString("password");
  s.Clear();
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.data(), nullptr);
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
