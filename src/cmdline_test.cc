#include "cmdline.h"

#include <gtest/gtest.h>

namespace hpcs {
namespace {

TEST(CmdlineTest, SplitsWithQuotes) {
  auto w = SplitKernelCmdline("BOOT_IMAGE=/vmlinuz  root=/dev/x \"rd.hpcs.keys=a b\" quiet\n");
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[2], "rd.hpcs.keys=a b");
}

TEST(CmdlineTest, ParsesAllOptions) {
  BootOptions b = ParseBootOptions(
      "quiet rd.hpcs.timeout=30 rd.hpcs.endpoint=https://kms.test:1/ rd.hpcs.iam=https://iam.test "
      "rd.hpcs.crk=abc rd.hpcs.proxy=http://p:3128 rd.hpcs.keys=luks:root,data "
      "rd.hpcs.resolve=kms.test:10.0.2.2 rd.hpcs.resolve=iam.test:10.0.2.2 rd.hpcs.debug");
  EXPECT_FALSE(b.disabled);
  EXPECT_TRUE(b.debug);
  EXPECT_EQ(b.timeout_s, 30);
  EXPECT_EQ(b.endpoint, "https://kms.test:1");
  EXPECT_EQ(b.iam, "https://iam.test");
  EXPECT_EQ(b.crk, "abc");
  EXPECT_EQ(b.proxy, "http://p:3128");
  EXPECT_EQ(b.keys, (std::vector<std::string>{"luks:root", "data"}));
  EXPECT_EQ(b.resolve.size(), 2u);
  EXPECT_TRUE(b.warnings.empty());
}

TEST(CmdlineTest, DisableAndDebugForms) {
  EXPECT_TRUE(ParseBootOptions("rd.hpcs=0").disabled);
  EXPECT_FALSE(ParseBootOptions("rd.hpcs=1").disabled);
  EXPECT_FALSE(ParseBootOptions("rd.hpcsx=0").disabled);
  EXPECT_TRUE(ParseBootOptions("rd.debug").debug);
  EXPECT_FALSE(ParseBootOptions("rd.hpcs.debug=0").debug);
}

TEST(CmdlineTest, WarnsAboutUnknownAndMalformed) {
  BootOptions b =
      ParseBootOptions("rd.hpcs.bogus=1 rd.hpcs.timeout=soon rd.hpcs.resolve=nocolon rd.hpcs.crk=");
  ASSERT_EQ(b.warnings.size(), 4u);
  EXPECT_NE(b.warnings[0].find("rd.hpcs.bogus"), std::string::npos);
  EXPECT_FALSE(b.timeout_s);
}

TEST(CmdlineTest, OverridesBeatConfig) {
  Config c;
  c.endpoint_url = "https://a";
  c.default_crk_uuid = "x";
  BootOptions b = ParseBootOptions("rd.hpcs.endpoint=https://b rd.hpcs.crk=y");
  ApplyBootOptions(b, &c);
  EXPECT_EQ(c.endpoint_url, "https://b");
  EXPECT_EQ(c.default_crk_uuid, "y");
}

}  // namespace
}  // namespace hpcs
