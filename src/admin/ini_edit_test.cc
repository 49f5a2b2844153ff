#include "admin/ini_edit.h"

#include <gtest/gtest.h>

#include <string>

namespace hpcs {
namespace {

std::string S(const Secret& s) { return std::string(s.view()); }

constexpr char kConf[] =
    "# my config\n"
    "[KP]\n"
    "region = us-south\n"
    "Default_CRK_UUID = old ; the old one\n"
    "api_key = k\n"
    "\n"
    "[HFL]\n"
    "key_dir = /k\n";

TEST(IniEditTest, SetReplacesTheValueInPlaceAndKeepsEverythingElse) {
  EXPECT_EQ(S(SetIniValue(kConf, "kp", "default_crk_uuid", "new")),
            "# my config\n[KP]\nregion = us-south\ndefault_crk_uuid = new\napi_key = k\n\n"
            "[HFL]\nkey_dir = /k\n");
}

TEST(IniEditTest, SetAddsAMissingKeyToItsSectionOrANewSection) {
  EXPECT_EQ(
      S(SetIniValue("[KP]\nregion = x\n[HFL]\nkey_dir = /k\n", "KP", "default_crk_uuid", "u")),
      "[KP]\nregion = x\ndefault_crk_uuid = u\n[HFL]\nkey_dir = /k\n");
  EXPECT_EQ(S(SetIniValue("[KP]\nregion = x", "KP", "a", "1")), "[KP]\nregion = x\na = 1\n");
  EXPECT_EQ(S(SetIniValue("[HFL]\nkey_dir = /k\n", "KP", "a", "1")),
            "[HFL]\nkey_dir = /k\n[KP]\na = 1\n");
  // A duplicate key (the parser keeps the last) is dropped.
  EXPECT_EQ(S(SetIniValue("[KP]\na = 1\na = 2\n", "KP", "a", "3")), "[KP]\na = 3\n");
}

TEST(IniEditTest, SectionBodyAndReplace) {
  EXPECT_EQ(S(IniSectionBody(kConf, "hfl")), "key_dir = /k\n");
  EXPECT_EQ(S(IniSectionBody(kConf, "nothing")), "");
  EXPECT_EQ(S(ReplaceIniSection(kConf, "KP", "endpoint_url = https://b\napi_key = TPM\n")),
            "# my config\n[KP]\nendpoint_url = https://b\napi_key = TPM\n[HFL]\nkey_dir = /k\n");
  EXPECT_EQ(S(ReplaceIniSection("[HFL]\nkey_dir = /k\n", "KP", "a = 1\n")),
            "[HFL]\nkey_dir = /k\n[KP]\na = 1\n");
}

}  // namespace
}  // namespace hpcs
