#include "base/encoding.h"

#include <gtest/gtest.h>

namespace hpcs {
namespace {

TEST(Base64Test, RoundTripBinary) {
  const unsigned char raw[] = {0, 0xff, 0x10, '\n', 0x80};
  Secret in(raw, sizeof raw);
  std::string b64 = Base64Encode(in.bytes());
  EXPECT_EQ(b64, "AP8QCoA=");
  Secret out;
  ASSERT_EQ(Base64Decode(b64, &out), 0);
  EXPECT_TRUE(out.Equals(in));
}

TEST(Base64Test, RejectsJunk) {
  Secret out;
  EXPECT_LT(Base64Decode("not base64!", &out), 0);
  EXPECT_LT(Base64Decode("AAA", &out), 0);
  EXPECT_EQ(Base64Decode("", &out), 0);
  EXPECT_TRUE(out.empty());
}

TEST(Base64Test, IntoBytesAsTheTpmBlobNeedsThem) {
  const std::vector<unsigned char> raw = {1, 2, 3, 0xfe};
  std::string b64 = Base64Encode(std::span<const unsigned char>(raw));
  EXPECT_EQ(b64, "AQID/g==");
  std::vector<unsigned char> back;
  ASSERT_EQ(Base64Decode(b64, &back), 0);
  EXPECT_EQ(back, raw);
  EXPECT_LT(Base64Decode("AQID/g=", &back), 0);
  EXPECT_EQ(back, raw);  // untouched on failure
}

}  // namespace
}  // namespace hpcs
