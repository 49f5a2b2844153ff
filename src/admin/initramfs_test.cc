#include "admin/initramfs.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <iterator>

#include "core/keystore.h"
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

TEST(InitramfsTest, MemberNamesOutsideOurKeyFileNamesAreRefused) {
  std::string key;
  EXPECT_EQ(ClassifyImageMember("usr/sbin/hpcs-unlock", &key), ImageMember::kUnlocker);
  EXPECT_EQ(ClassifyImageMember("etc/hpcs-for-luks.ini", &key), ImageMember::kConfig);
  EXPECT_EQ(ClassifyImageMember("var/lib/hpcs-for-luks/api-key-blob.txt", &key),
            ImageMember::kBlob);
  EXPECT_EQ(ClassifyImageMember("var/lib/hpcs-for-luks/user/hpcs:data", &key), ImageMember::kKey);
  EXPECT_EQ(key, "user/hpcs:data");
  EXPECT_EQ(ClassifyImageMember("var/lib/hpcs-for-luks/logon/a b.c", &key), ImageMember::kKey);
  EXPECT_EQ(key, "logon/a b.c");
  EXPECT_EQ(ClassifyImageMember("var/lib/hpcs-for-luks/user/cl\xc3\xa9", &key), ImageMember::kKey);
  // Not ours, our directories, and the names a key directory skips.
  for (const char* other :
       {"usr/bin/sh", "etc/hpcs-for-luks/ca.pem", "var/lib/hpcs-for-luks",
        "var/lib/hpcs-for-luks/user", "var/lib/hpcs-for-luks/logon",
        "var/lib/hpcs-for-luks/user/.hidden", "var/lib/hpcs-for-luks/user/k.dpkg-old",
        "var/lib/hpcs-for-luks-other/user/k", "/var/lib/hpcs-for-luks/user/k",
        "./etc/hpcs-for-luks.ini"}) {
    EXPECT_EQ(ClassifyImageMember(other, &key), ImageMember::kOther) << other;
  }
  // What climbs out, matches more than itself, or is not one component.
  for (const char* refused : {
           "var/lib/hpcs-for-luks/user/../../../../tmp/pwned",
           "var/lib/hpcs-for-luks/../../../../tmp/pwned",
           "var/lib/hpcs-for-luks/user/..",
           "var/lib/hpcs-for-luks/user/.",
           "var/lib/hpcs-for-luks/user/",
           "var/lib/hpcs-for-luks/user/a/b",
           "var/lib/hpcs-for-luks/user//a",
           "var/lib/hpcs-for-luks/user/*",
           "var/lib/hpcs-for-luks/user/k?",
           "var/lib/hpcs-for-luks/logon/[a]",
           "var/lib/hpcs-for-luks/user/a\\d",  // a pattern's escape
           "var/lib/hpcs-for-luks/user/a\nb",
           "var/lib/hpcs-for-luks/user/tab\there",
           "var/lib/hpcs-for-luks/linger/user/k",
           "var/lib/hpcs-for-luks/api-key-blob.txt/x",
           "var/lib/hpcs-for-luks/other",
       }) {
    EXPECT_EQ(ClassifyImageMember(refused, &key), ImageMember::kRefused) << refused;
  }
}

TEST(InitramfsTest, ParsesCpiosLongListing) {
  std::string listing =
      "Image: /boot/initrd.img: 4.0K\n"
      "========================================================================\n"
      "Version: 059\n"
      "\n"
      "dracut modules:\n"
      "hpcs\n"
      "========================================================================\n"
      "drwxr-xr-x   4 root     root            0 Dec  7 14:43 .\n"
      "-rwxr-xr-x   1 root     root      1234567 Jan  1  2025 usr/sbin/hpcs-unlock\n"
      "-rw-------   1 0        0              45 Dec  7 14:43 var/lib/hpcs-for-luks/user/a b\n"
      "lrwxrwxrwx   1 root     root           11 Dec  7 14:43 var/lib/hpcs-for-luks/user/ln -> "
      "/etc/passwd\n"
      "crw-r--r--   1 root     root       5,   1 Dec  7 14:43 dev/console\n"
      "-rw-r--r--   1 root     root            6 Dec  7 14:44 var/lib/hpcs-for-luks/../../tmp/x\n"
      "========================================================================\n";
  auto m = ParseInitramfsListing(listing);
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0].type, 'd');
  EXPECT_EQ(m[0].name, ".");
  EXPECT_EQ(m[1].type, '-');
  EXPECT_EQ(m[1].name, "usr/sbin/hpcs-unlock");
  EXPECT_EQ(m[2].name, "var/lib/hpcs-for-luks/user/a b");
  EXPECT_EQ(m[3].type, 'l');
  EXPECT_EQ(m[3].name, "var/lib/hpcs-for-luks/user/ln");
  EXPECT_EQ(m[4].type, 'c');
  EXPECT_EQ(m[4].name, "dev/console");
  EXPECT_EQ(m[5].name, "var/lib/hpcs-for-luks/../../tmp/x");
  EXPECT_TRUE(ParseInitramfsListing("").empty());
  EXPECT_TRUE(ParseInitramfsListing("-rw-r--r--   1 root root 6 Dec  7 14:44").empty());
}

// lsinitrd stood in for by a script: the listing from a file, `-f NAME` the
// file m/NAME; each call's arguments logged.
class FakeLsinitrd : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string& d = dir_.path();
    dir_.Write("bin/lsinitrd",
               "#!/bin/sh\necho \"$*\" >>" + d + "/calls\nif [ \"$1\" = -f ]; then cat \"" + d +
                   "/m/$2\"; else cat " + d + "/listing; fi\n",
               0755);
    image_ = dir_.Write("initrd.img", "not read by the fake");
    const char* path = getenv("PATH");
    old_path_ = path ? path : "";
    setenv("PATH", (d + "/bin:" + old_path_).c_str(), 1);
  }
  void TearDown() override { setenv("PATH", old_path_.c_str(), 1); }
  void Member(char type, const std::string& name, const std::string& content = "") {
    listing_ += std::string(1, type) + "rw-------   1 root     root  " +
                std::to_string(content.size()) + " Dec  7 14:43 " + name +
                (type == 'l' ? " -> /etc/passwd" : "") + "\n";
    if (type == '-') dir_.Write("m/" + name, content);
  }
  std::string Calls() {
    std::ifstream f(dir_.path() + "/calls");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  ScratchDir dir_;
  std::string image_, old_path_, listing_;
};

TEST_F(FakeLsinitrd, ReadsOnlyOurExactMembersEachBounded) {
  Member('-', "usr/sbin/hpcs-unlock", "#!/bin/sh\n");
  Member('-', "etc/hpcs-for-luks.ini", "[KP]\napi_key = k\n");
  Member('-', "var/lib/hpcs-for-luks/api-key-blob.txt", "blob\n");
  Member('-', "var/lib/hpcs-for-luks/user/k1", "  ct1\n");
  Member('l', "var/lib/hpcs-for-luks/user/link");
  Member('d', "var/lib/hpcs-for-luks/user/dir");
  Member('-', "var/lib/hpcs-for-luks/logon/big", std::string(kMaxWrappedKeySize + 1, 'a'));
  Member('-', "var/lib/hpcs-for-luks/logon/bin", std::string("a\0b", 3));
  Member('-', "var/lib/hpcs-for-luks/user/.k1.tmp", "partial");
  listing_ +=
      "-rw-r--r--   1 root root 6 Dec  7 14:44 var/lib/hpcs-for-luks/user/../../../../tmp/x\n"
      "-rw-r--r--   1 root root 6 Dec  7 14:44 var/lib/hpcs-for-luks/user/*\n";
  dir_.Write("listing", listing_);
  InitramfsContents c;
  std::string err;
  ASSERT_EQ(ReadInitramfs(image_, &c, &err), 0) << err;
  EXPECT_TRUE(c.has_unlocker);
  ASSERT_TRUE(c.config.has_value());
  EXPECT_EQ(c.config->view(), "[KP]\napi_key = k\n");
  EXPECT_EQ(c.tpm_blob, std::optional<std::string>("blob\n"));
  // A link, too large, not text: present with no content. A directory and a
  // temporary file: not keys.
  EXPECT_EQ(c.keys,
            (std::map<std::string, std::string>{
                {"logon/big", ""}, {"logon/bin", ""}, {"user/k1", "ct1"}, {"user/link", ""}}));
  EXPECT_EQ(c.refused, (std::vector<std::string>{"var/lib/hpcs-for-luks/user/*",
                                                 "var/lib/hpcs-for-luks/user/../../../../tmp/x"}));
  // The listing, then one -f per member read: never a refused name, never --unpack.
  std::string calls = Calls();
  EXPECT_EQ(calls, image_ + "\n" + "-f etc/hpcs-for-luks.ini " + image_ + "\n" +
                       "-f var/lib/hpcs-for-luks/api-key-blob.txt " + image_ + "\n" +
                       "-f var/lib/hpcs-for-luks/logon/big " + image_ + "\n" +
                       "-f var/lib/hpcs-for-luks/logon/bin " + image_ + "\n" +
                       "-f var/lib/hpcs-for-luks/user/k1 " + image_ + "\n");
}

TEST_F(FakeLsinitrd, AConfigTooLargeIsAbsentAndAFailingRunIsAnError) {
  Member('-', "usr/sbin/hpcs-unlock", "x");
  Member('-', "etc/hpcs-for-luks.ini", std::string(1024 * 1024 + 1, '#'));
  dir_.Write("listing", listing_);
  InitramfsContents c;
  std::string err;
  ASSERT_EQ(ReadInitramfs(image_, &c, &err), 0) << err;
  EXPECT_TRUE(c.has_unlocker);
  EXPECT_FALSE(c.config.has_value());
  // A member that cannot be printed (the fake's cat fails): the image cannot be read.
  listing_ += "-rw-------   1 root root 3 Dec  7 14:43 var/lib/hpcs-for-luks/user/gone\n";
  dir_.Write("listing", listing_);
  EXPECT_EQ(ReadInitramfs(image_, &c, &err), -EIO);
  EXPECT_NE(err.find("lsinitrd '" + image_ + "': exit status 1"), std::string::npos) << err;
}

}  // namespace
}  // namespace hpcs
