#include "core/token_volumes.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "testing/test_doubles.h"

namespace hpcs {
namespace {

using Paths = std::vector<std::string>;

TEST(BootVolumeDevicesTest, TheCrypttabsLinesButNoautoAndTheKernelsRdLuksOptions) {
  std::string crypttab =
      "# name source key options\n"
      "root UUID=AAAA-1 none luks,discard\n"
      "data /dev/vdb none luks,_netdev\n"
      "later UUID=later none luks,noauto\n"
      "again /dev/vdb none luks\n";
  std::string cmdline =
      "root=/dev/mapper/x rd.luks.uuid=luks-0B3E rd.luks.uuid=1234 "
      "rd.luks.name=5678=home luks.uuid=not-in-the-initramfs rd.luks.uuid=AAAA-1";  // once
  EXPECT_EQ(BootVolumeDevices(crypttab, cmdline),
            (Paths{"/dev/disk/by-uuid/aaaa-1", "/dev/vdb", "/dev/disk/by-uuid/0b3e",
                   "/dev/disk/by-uuid/1234", "/dev/disk/by-uuid/5678"}));
  EXPECT_TRUE(BootVolumeDevices("", "quiet splash").empty());
  // Not a UUID: no path of the command line's choosing is read.
  EXPECT_TRUE(BootVolumeDevices("", "rd.luks.uuid=../../etc/shadow rd.luks.name=a/b=x").empty());
}

TEST(DeviceHeldTest, ADeviceWithAHolderInSysfsIsOpen) {
  ScratchDir dir;
  std::string sys = dir.Mkdir("sys");
  dir.Mkdir("sys/class");
  dir.Mkdir("sys/class/block");
  dir.Mkdir("sys/class/block/vdb");
  dir.Mkdir("sys/class/block/vdb/holders");
  dir.Mkdir("sys/class/block/vdc");
  dir.Mkdir("sys/class/block/vdc/holders");
  dir.Write("sys/class/block/vdc/holders/dm-0", "");
  std::string vdb = dir.Write("vdb", ""), vdc = dir.Write("vdc", "");
  ASSERT_EQ(symlink(vdc.c_str(), (dir.path() + "/by-uuid-link").c_str()), 0);
  EXPECT_FALSE(DeviceHeld(vdb, sys));
  EXPECT_TRUE(DeviceHeld(vdc, sys));
  EXPECT_TRUE(DeviceHeld(dir.path() + "/by-uuid-link", sys));  // followed, as udev's links
  EXPECT_FALSE(DeviceHeld(dir.path() + "/missing", sys));
}

TEST(OurHpcsTokensTest, OnlyTokensThatParseAndNameOurInstance) {
  auto token = [](const std::string& instance) {
    return R"({"type":"hpcs","keyslots":["1"],"version":1,"kms":"https://kms.test",)"
           R"("instance":")" +
           instance +
           R"(","crk":"crk-1","key_version":"v1","bound_to":"luks2-uuid","ciphertext":"Y3Q="})";
  };
  Paths in = {token("ours"), token("theirs"), R"({"type":"hpcs"})", token("ours")};
  EXPECT_EQ(OurHpcsTokens(in, "ours"), (Paths{token("ours"), token("ours")}));
  EXPECT_TRUE(OurHpcsTokens(in, "nobody").empty());
}

}  // namespace
}  // namespace hpcs
