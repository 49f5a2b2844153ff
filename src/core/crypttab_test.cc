#include "core/crypttab.h"

#include <gtest/gtest.h>

namespace hpcs {
namespace {

TEST(CrypttabTest, ParsesFieldsOptionsAndSkipsComments) {
  auto e = ParseCrypttab(
      "# comment\n"
      "\n"
      "root UUID=AB-cd none luks,discard\n"
      "data\t/dev/sdb1  /etc/keys/data.key  luks,_netdev,keyfile-timeout=10s\r\n"
      "swap /dev/sdc\n"
      "   # indented comment\n"
      "lonely\n");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].name, "root");
  EXPECT_EQ(e[0].source, "UUID=AB-cd");
  EXPECT_EQ(e[0].key, "none");
  EXPECT_EQ(e[0].line, 3);
  EXPECT_TRUE(e[0].Has("luks"));
  EXPECT_FALSE(e[0].Has("_netdev"));
  EXPECT_EQ(e[1].key, "/etc/keys/data.key");
  EXPECT_TRUE(e[1].Has("_netdev"));
  EXPECT_TRUE(e[1].Has("keyfile-timeout"));
  EXPECT_FALSE(e[1].Has("keyfile"));
  EXPECT_EQ(e[1].line, 4);
  EXPECT_EQ(e[2].key, "none");
  EXPECT_TRUE(e[2].options.empty());
}

TEST(CrypttabTest, SourcePaths) {
  EXPECT_EQ(CrypttabSourcePath("UUID=AB-cd"), "/dev/disk/by-uuid/ab-cd");
  EXPECT_EQ(CrypttabSourcePath("UUID=\"x\""), "/dev/disk/by-uuid/x");
  EXPECT_EQ(CrypttabSourcePath("PARTUUID=p"), "/dev/disk/by-partuuid/p");
  EXPECT_EQ(CrypttabSourcePath("LABEL=My"), "/dev/disk/by-label/My");
  EXPECT_EQ(CrypttabSourcePath("PARTLABEL=q"), "/dev/disk/by-partlabel/q");
  EXPECT_EQ(CrypttabSourcePath("/srv/disk.img"), "/srv/disk.img");
}

}  // namespace
}  // namespace hpcs
