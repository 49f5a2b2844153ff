#include "base/encoding.h"

#include <gtest/gtest.h>

#include <cerrno>

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

TEST(HexTest, LowerCaseTwoDigitsAByte) {
  const unsigned char raw[] = {0x00, 0x0f, 0xa5, 0xff, 0x10};
  EXPECT_EQ(HexEncode(raw), "000fa5ff10");
  EXPECT_EQ(HexEncode({}), "");
}

TEST(HexTest, OneByteInEitherCase) {
  EXPECT_EQ(std::string(HexByte(0xab).data(), 2), "ab");
  EXPECT_EQ(std::string(HexByte(0xab, HexCase::kUpper).data(), 2), "AB");
  EXPECT_EQ(std::string(HexByte(0x07, HexCase::kUpper).data(), 2), "07");
}

TEST(HexTest, DecodesEitherCaseAndEveryByteRoundTrips) {
  std::vector<unsigned char> all(256);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<unsigned char>(i);
  std::vector<unsigned char> back;
  ASSERT_EQ(HexDecode(HexEncode(all), &back), 0);
  EXPECT_EQ(back, all);
  ASSERT_EQ(HexDecode("00FfA5", &back), 0);
  EXPECT_EQ(back, (std::vector<unsigned char>{0x00, 0xff, 0xa5}));
  ASSERT_EQ(HexDecode("", &back), 0);
  EXPECT_TRUE(back.empty());
}

TEST(HexTest, RejectsOddLengthAndNonDigits) {
  std::vector<unsigned char> out = {42};
  EXPECT_EQ(HexDecode("abc", &out), -EINVAL);
  EXPECT_EQ(HexDecode("0g", &out), -EINVAL);
  EXPECT_EQ(HexDecode("g0", &out), -EINVAL);
  EXPECT_EQ(HexDecode(" 0", &out), -EINVAL);
  EXPECT_EQ(HexDecode("0x", &out), -EINVAL);
  EXPECT_EQ(HexDecode(std::string_view("0\0", 2), &out), -EINVAL);
  EXPECT_EQ(out, std::vector<unsigned char>{42});  // untouched on failure
}

}  // namespace
}  // namespace hpcs
