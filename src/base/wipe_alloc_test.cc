#include "base/wipe_alloc.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace hpcs {
namespace {

TEST(WipeAllocTest, ReallocKeepsTheContentsBothWays) {
  auto* p = static_cast<char*>(WipingMalloc(8));
  ASSERT_NE(p, nullptr);
  memcpy(p, "abcdefg", 8);
  p = static_cast<char*>(WipingRealloc(p, 4096));
  ASSERT_NE(p, nullptr);
  EXPECT_STREQ(p, "abcdefg");
  p = static_cast<char*>(WipingRealloc(p, 4));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(std::string(p, 4), "abcd");
  EXPECT_EQ(WipingRealloc(p, 0), nullptr);  // freed
  p = static_cast<char*>(WipingRealloc(nullptr, 3));
  ASSERT_NE(p, nullptr);
  WipingFree(p);
  WipingFree(nullptr);
}

TEST(WipeAllocTest, CallocZeroesAndStrdupCopies) {
  auto* z = static_cast<unsigned char*>(WipingCalloc(16, 4));
  ASSERT_NE(z, nullptr);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(z[i], 0) << i;
  WipingFree(z);
  char* d = WipingStrdup("apikey=secret");
  ASSERT_NE(d, nullptr);
  EXPECT_STREQ(d, "apikey=secret");
  WipingFree(d);
}

}  // namespace
}  // namespace hpcs
