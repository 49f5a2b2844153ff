#include "base/random.h"

#include <gtest/gtest.h>

#include <set>

namespace hpcs {
namespace {

// A constant (or stuck) source fails each of these; a real one fails with
// odds far below 2^-100.

TEST(RandomTest, SuccessiveValuesDiffer) {
  std::set<uint32_t> seen;
  for (int i = 0; i < 16; ++i) seen.insert(RandomU32());
  EXPECT_GT(seen.size(), 8u);
}

TEST(RandomTest, BytesFillTheWholeBuffer) {
  Secret a, b;
  std::string err;
  ASSERT_EQ(RandomSecret(64, &a, &err), 0) << err;
  ASSERT_EQ(RandomSecret(64, &b, &err), 0) << err;
  ASSERT_EQ(a.size(), 64u);
  EXPECT_FALSE(a.Equals(b));
  // No stretch of zeroes left behind by a short read.
  std::set<unsigned char> distinct(a.data() + 32, a.data() + 64);
  EXPECT_GT(distinct.size(), 4u);
}

TEST(RandomTest, Uuid4Format) {
  std::string u = NewUuid4();
  ASSERT_EQ(u.size(), 36u);
  for (size_t i : {8u, 13u, 18u, 23u}) EXPECT_EQ(u[i], '-') << u;
  EXPECT_EQ(u[14], '4') << u;                                          // version
  EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos) << u;  // variant
  EXPECT_NE(NewUuid4(), u);
}

TEST(RandomTest, HexNames) {
  std::string h = RandomHex(4);
  ASSERT_EQ(h.size(), 8u);
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos) << h;
  std::set<std::string> seen;
  for (int i = 0; i < 8; ++i) seen.insert(RandomHex(4));
  EXPECT_GT(seen.size(), 4u);
}

}  // namespace
}  // namespace hpcs
