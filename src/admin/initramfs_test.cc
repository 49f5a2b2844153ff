#include "admin/initramfs.h"

#include <gtest/gtest.h>

#include "testing/test_doubles.h"

namespace hpcs {
namespace {

TEST(InitramfsTest, NewestKernelSortsVersionsNumerically) {
  EXPECT_EQ(NewestKernel({"6.1.0-9-amd64", "6.1.0-28-amd64", "5.10.0-30-amd64"}), "6.1.0-28-amd64");
  EXPECT_EQ(NewestKernel({"6.10.1", "6.9.12"}), "6.10.1");
  EXPECT_EQ(NewestKernel({}), "");
}

class FakeRoot : public ::testing::Test {
 protected:
  void Mkdir(const std::string& p) { dir_.Mkdir(p.substr(1)); }
  void Touch(const std::string& p) { dir_.Write(p.substr(1), "x"); }
  ScratchDir dir_;
  const std::string& root_ = dir_.path();
};

TEST_F(FakeRoot, FindsTheRunningAndTheNewestKernelsImages) {
  Mkdir("/lib/modules/6.1.0-9-amd64");
  Mkdir("/usr/lib/modules/6.1.0-28-amd64");
  Mkdir("/boot");
  Touch("/boot/initrd.img-6.1.0-9-amd64");
  Touch("/boot/initramfs-6.1.0-28-amd64.img");
  EXPECT_EQ(InstalledKernels(root_), (std::vector<std::string>{"6.1.0-28-amd64", "6.1.0-9-amd64"}));
  auto images = FindInitramfsImages(root_, "6.1.0-9-amd64");
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].path, root_ + "/boot/initrd.img-6.1.0-9-amd64");
  EXPECT_EQ(images[0].roles, std::vector<std::string>{"running"});
  EXPECT_TRUE(images[0].exists);
  EXPECT_EQ(images[1].path, root_ + "/boot/initramfs-6.1.0-28-amd64.img");
  EXPECT_EQ(images[1].roles, std::vector<std::string>{"newest"});
  // Running the newest: one image with both roles; a missing one is named
  // by the Debian convention.
  images = FindInitramfsImages(root_, "6.1.0-28-amd64");
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].roles, (std::vector<std::string>{"running", "newest"}));
  images = FindInitramfsImages(root_, "7.0");
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].path, root_ + "/boot/initrd.img-7.0");
  EXPECT_FALSE(images[0].exists);
}

TEST(InitramfsTest, ConfigDifferencesNameTheSettingsNeverTheValues) {
  Config a, b;
  std::string err;
  ASSERT_EQ(ParseConfig("[KP]\nregion = us-south\nservice_instance_id = i\napi_key = secret-1\n"
                        "default_crk_uuid = c1\n[HFL]\nkey_dir = /var/lib/x\n",
                        "a", &a, &err),
            0);
  ASSERT_EQ(ParseConfig("[KP]\nregion = us-south\nservice_instance_id = i\napi_key = secret-1\n"
                        "default_crk_uuid = c1\nca_file = /etc/x.pem\n[HFL]\nkey_dir = /other\n",
                        "b", &b, &err),
            0);
  EXPECT_TRUE(ConfigDifferences(a, b).empty());
  ASSERT_EQ(ParseConfig("[KP]\nregion = eu-de\nservice_instance_id = i\napi_key = secret-2\n"
                        "default_crk_uuid = c2\n",
                        "b", &b, &err),
            0);
  auto d = ConfigDifferences(a, b);
  EXPECT_EQ(d, (std::vector<std::string>{"[KP] endpoint_url (or region)", "[KP] default_crk_uuid",
                                         "[KP] api_key"}));
  // Whether rd.hpcs.endpoint= may name any host matters at boot too.
  ASSERT_EQ(ParseConfig("[KP]\nregion = us-south\nservice_instance_id = i\napi_key = secret-1\n"
                        "default_crk_uuid = c1\n[HFL]\nallow_boot_endpoints = yes\n",
                        "b", &b, &err),
            0);
  EXPECT_EQ(ConfigDifferences(a, b), (std::vector<std::string>{"[HFL] allow_boot_endpoints"}));
}

}  // namespace
}  // namespace hpcs
