#include "core/config.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "base/strutil.h"
#include "testing/source_tree.h"

namespace hpcs {
namespace {

constexpr char kGood[] =
    "# hpcs-for-luks configuration\n"
    "[KP]\n"
    "Region = us-south\n"
    "endpoint_url =\n"
    "SERVICE_INSTANCE_ID = 1234-abcd   ; the instance\n"
    "api_key = s3cr3t#notacomment  # a comment\n"
    "default_crk_uuid: 0000-1111\n"
    "[HFL]\n"
    "key_dir = /tmp/keys/\n";

TEST(ConfigTest, ParsesIbmFormatWithCommentsAndCase) {
  Config c;
  std::string err;
  ASSERT_EQ(ParseConfig(kGood, "/etc/x.ini", &c, &err), 0) << err;
  EXPECT_EQ(c.region, "us-south");
  EXPECT_EQ(c.endpoint_url, "https://us-south.kms.cloud.ibm.com");
  EXPECT_EQ(c.iam_endpoint_url, "https://iam.cloud.ibm.com");
  EXPECT_EQ(c.service_instance_id, "1234-abcd");
  EXPECT_EQ(c.api_key.view(), "s3cr3t#notacomment");
  EXPECT_FALSE(c.api_key_from_tpm);
  EXPECT_EQ(c.default_crk_uuid, "0000-1111");
  EXPECT_EQ(c.key_dir, "/tmp/keys");
  EXPECT_EQ(c.tpm_blob, "/tmp/keys/api-key-blob.txt");
  EXPECT_EQ(CheckKmsSettings(c, &err), 0) << err;
}

TEST(ConfigTest, ExplicitEndpointWinsAndLosesTrailingSlash) {
  Config c;
  ASSERT_EQ(
      ParseConfig("[KP]\nregion=eu-de\nendpoint_url=https://kms.test:8443//\n", "f", &c, nullptr),
      0);
  EXPECT_EQ(c.endpoint_url, "https://kms.test:8443");
}

TEST(ConfigTest, ReportsEveryMissingValueAtOnceWithFileName) {
  Config c;
  std::string err;
  ASSERT_EQ(ParseConfig("[KP]\napi_key =\n", "/etc/hpcs-for-luks.ini", &c, &err), 0);
  EXPECT_LT(CheckKmsSettings(c, &err), 0);
  EXPECT_NE(err.find("/etc/hpcs-for-luks.ini"), std::string::npos) << err;
  EXPECT_NE(err.find("region or endpoint_url"), std::string::npos) << err;
  EXPECT_NE(err.find("service_instance_id"), std::string::npos) << err;
  EXPECT_NE(err.find("api_key"), std::string::npos) << err;
}

TEST(ConfigTest, TpmKeyword) {
  Config c;
  ASSERT_EQ(ParseConfig("[KP]\napi_key = TPM\n[HFL]\ntpm_blob=/b\n", "f", &c, nullptr), 0);
  EXPECT_TRUE(c.api_key_from_tpm);
  EXPECT_TRUE(c.api_key.empty());
  EXPECT_EQ(c.tpm_blob, "/b");
}

constexpr char kApiKey[] = "apikey-Hq4Zt8Lw2Nc6";

TEST(ConfigTest, RejectsPlainHttpWithoutShowingTheApiKey) {
  const std::string key_line = std::string("api_key=") + kApiKey + "\n";
  for (std::string ini :
       {"[KP]\nendpoint_url=http://x\nservice_instance_id=i\n",
        "[KP]\niam_endpoint_url=http://iam\nregion=r\nservice_instance_id=i\n", "[KP]\n"}) {
    Config c;
    std::string err;
    ASSERT_EQ(ParseConfig(ini + key_line, "f", &c, &err), 0) << err;
    EXPECT_EQ(c.api_key.view(), kApiKey);
    EXPECT_LT(CheckKmsSettings(c, &err), 0);
    EXPECT_NE(err.find("f: "), std::string::npos) << err;
    EXPECT_EQ(err.find(kApiKey), std::string::npos) << err;
  }
}

// The URLs are checked as the transport reads them (ParseHttpsUrl), not by
// their first letters: no password in them, no host other than curl's.
TEST(ConfigTest, RefusesUrlsCurlReadsOtherwiseOrWithCredentials) {
  for (const char* url : {"https://user:s3cret@kms.test", "https:/evil.example/x://kms.test"}) {
    Config c;
    std::string err;
    ASSERT_EQ(ParseConfig(
                  std::string("[KP]\nservice_instance_id=i\napi_key=k\nendpoint_url=") + url + "\n",
                  "/etc/x.ini", &c, &err),
              0)
        << err;
    EXPECT_EQ(CheckKmsSettings(c, &err), -EINVAL) << url;
    EXPECT_TRUE(err.starts_with("/etc/x.ini: 'https:/")) << err;
    EXPECT_EQ(err.find("s3cret"), std::string::npos) << err;
  }
}

TEST(ConfigTest, SyntaxErrorsDoNotShowTheApiKey) {
  Config c;
  std::string err;
  std::string ini = std::string("[KP]\napi_key = ") + kApiKey + "\n[HFL\n";
  EXPECT_LT(ParseConfig(ini, "f", &c, &err), 0);
  EXPECT_NE(err.find("line 3"), std::string::npos) << err;
  EXPECT_EQ(err.find(kApiKey), std::string::npos) << err;
}

TEST(ConfigTest, HostileInput) {
  Config c;
  std::string err;
  EXPECT_LT(ParseConfig("api_key = x\n", "f", &c, &err), 0);  // outside a section
  EXPECT_NE(err.find("line 1"), std::string::npos);
  EXPECT_LT(ParseConfig("[KP\nx=1\n", "f", &c, &err), 0);
  EXPECT_LT(ParseConfig("[]\n", "f", &c, &err), 0);
  EXPECT_LT(ParseConfig("[KP]\njust words\n", "f", &c, &err), 0);
  EXPECT_NE(err.find("line 2"), std::string::npos);
  EXPECT_LT(ParseConfig(std::string_view("[KP]\nregion=a\0b\n", 15), "f", &c, &err), 0);
  EXPECT_LT(ParseConfig("[HFL]\ninitramfs_plain_api_key = maybe\n", "f", &c, &err), 0);
  // Odd but valid: CRLF line ends, empty file, no trailing newline, huge line.
  EXPECT_EQ(ParseConfig("[KP]\r\nregion = x\r\n", "f", &c, &err), 0);
  EXPECT_EQ(c.region, "x");
  EXPECT_EQ(ParseConfig("", "f", &c, &err), 0);
  EXPECT_EQ(ParseConfig("[KP]\nregion=" + std::string(100000, 'a'), "f", &c, &err), 0);
}

TEST(ConfigTest, SlashesAndSpacesAtTheEndAreOneThing) {
  // Found by the config fuzz target: "/v ///" became "/v " (a space at the
  // end), which a copy of the config written back reads as "/v".
  Config c;
  std::string err;
  ASSERT_EQ(ParseConfig("[KP]\nendpoint_url = https://kms.test/ /\n[HFL]\nkey_dir = /v ///\n", "f",
                        &c, &err),
            0);
  EXPECT_EQ(c.key_dir, "/v");
  EXPECT_EQ(c.endpoint_url, "https://kms.test");
  ASSERT_EQ(ParseConfig("[HFL]\nkey_dir = / /\n", "f", &c, &err), 0);
  EXPECT_EQ(c.key_dir, "/");
  // "/" alone is no URL at all: the default stays (the fuzz target again).
  ASSERT_EQ(ParseConfig("[KP]\niam_endpoint_url = /\n", "f", &c, &err), 0);
  EXPECT_EQ(c.iam_endpoint_url, kDefaultIamEndpoint);
}

TEST(ConfigTest, AllowBootEndpointsIsOffUnlessSaid) {
  Config c;
  std::string err;
  ASSERT_EQ(ParseConfig("[KP]\nregion = x\n", "f", &c, &err), 0);
  EXPECT_FALSE(c.allow_boot_endpoints);
  ASSERT_EQ(ParseConfig("[hfl]\nALLOW_BOOT_ENDPOINTS = Yes\n", "f", &c, &err), 0);
  EXPECT_TRUE(c.allow_boot_endpoints);
  EXPECT_LT(ParseConfig("[HFL]\nallow_boot_endpoints = sometimes\n", "f", &c, &err), 0);
  EXPECT_EQ(err, "f: [HFL] allow_boot_endpoints must be yes or no");
}

// `config --print` (FormatConfig) writes what the dracut module puts in the
// initramfs: every setting ConfigValue names must read back the same, also
// the ones that are not at their defaults.
TEST(ConfigTest, FormatConfigKeepsEverySetting) {
  Config c, again;
  std::string err;
  ASSERT_EQ(ParseConfig("[KP]\nregion = eu-de\nservice_instance_id = i\napi_key = k\n"
                        "default_crk_uuid = u\nca_file = /etc/ca.pem\n[HFL]\nkey_dir = /k\n"
                        "tpm2_tcti = device:/dev/tpm1\ninitramfs_plain_api_key = yes\n"
                        "allow_boot_endpoints = yes\nupdate_wrapped_keys = off\n"
                        "key_timeout = 0\ntoken_timeout = 17\n",
                        "f", &c, &err),
            0)
      << err;
  ASSERT_EQ(ParseConfig(FormatConfig(c, true), "g", &again, &err), 0) << err;
  for (const char* name : kConfigValueNames) {
    EXPECT_EQ(ConfigValue(again, name), ConfigValue(c, name)) << name;
  }
  EXPECT_FALSE(again.update_wrapped_keys);
  EXPECT_TRUE(again.allow_boot_endpoints);
  EXPECT_EQ(again.key_timeout_s, 0u);
  EXPECT_EQ(again.token_timeout_s, 17u);
}

TEST(ConfigTest, TokenTimeoutDefaultsToFiveSecondsAndIsOneToSixty) {
  Config c;
  std::string err;
  ASSERT_EQ(ParseConfig("[HFL]\nkey_dir = /k\n", "f", &c, &err), 0) << err;
  EXPECT_EQ(c.token_timeout_s, 5u);
  EXPECT_EQ(ConfigValue(c, "token_timeout"), "5");
  for (const char* good : {"1", "60"}) {
    ASSERT_EQ(ParseConfig(std::string("[HFL]\ntoken_timeout = ") + good + "\n", "f", &c, &err), 0)
        << err;
    EXPECT_EQ(std::to_string(c.token_timeout_s), good);
  }
  for (const char* bad : {"0", "-1", "61", "5s"}) {
    EXPECT_LT(ParseConfig(std::string("[HFL]\ntoken_timeout = ") + bad + "\n", "f", &c, &err), 0)
        << bad;
    EXPECT_EQ(err, "f: [HFL] token_timeout must be a number of seconds from 1 to 60") << bad;
  }
}

TEST(ConfigTest, AuthVpcNeedsNoApiKeyAndDoesNotReadOne) {
  constexpr char kVpc[] =
      "[KP]\n"
      "auth = vpc\n"
      "region = us-south\n"
      "service_instance_id = inst\n"
      "trusted_profile_id = Profile-1234\n"
      "api_key = s3cr3t-left-behind\n";
  Config c;
  std::string err;
  ASSERT_EQ(ParseConfig(kVpc, "/etc/x.ini", &c, &err), 0) << err;
  EXPECT_EQ(c.auth, Auth::kVpc);
  EXPECT_TRUE(c.api_key.empty());
  EXPECT_FALSE(c.api_key_from_tpm);
  EXPECT_TRUE(c.api_key_ignored);
  EXPECT_EQ(c.trusted_profile.id, "Profile-1234");
  EXPECT_EQ(c.metadata_endpoint_url, "http://169.254.169.254");
  EXPECT_EQ(CheckKmsSettings(c, &err), 0) << err;
  EXPECT_EQ(*ConfigValue(c, "api_key_source"), "vpc");
  EXPECT_EQ(*ConfigValue(c, "auth"), "vpc");
  // The initramfs's copy: no API key, not even the one left behind.
  const std::string formatted = FormatConfig(c, true);
  EXPECT_EQ(formatted.find("s3cr3t"), std::string::npos) << formatted;
  EXPECT_EQ(formatted.find("\napi_key"), std::string::npos) << formatted;
  Config again;
  ASSERT_EQ(ParseConfig(formatted, "/x", &again, &err), 0) << err;
  EXPECT_EQ(again.auth, Auth::kVpc);
  EXPECT_EQ(again.trusted_profile.id, "Profile-1234");
  EXPECT_EQ(again.metadata_endpoint_url, "http://169.254.169.254");
}

// Found by the config fuzzer: a profile named while auth = api-key was lost.
TEST(ConfigTest, TheVpcSettingsReadBackWhateverAuthSays) {
  Config c;
  std::string err;
  ASSERT_EQ(ParseConfig("[KP]\ntrusted_profile_crn = crn:v1:x\n"
                        "metadata_endpoint_url = http://api.metadata.cloud.ibm.com\n",
                        "/x", &c, &err),
            0)
      << err;
  Config again;
  ASSERT_EQ(ParseConfig(FormatConfig(c, false), "/x", &again, &err), 0) << err;
  EXPECT_EQ(again.auth, Auth::kApiKey);
  EXPECT_EQ(again.trusted_profile.crn, "crn:v1:x");
  EXPECT_EQ(again.metadata_endpoint_url, "http://api.metadata.cloud.ibm.com");
}

TEST(ConfigTest, AuthVpcRefusals) {
  const std::string head = "[KP]\nregion = us-south\nservice_instance_id = i\n";
  struct Case {
    std::string text;
    std::string error;
  };
  for (const Case& k : {
           Case{head + "auth = apikey\n", "/x: [KP] auth must be api-key or vpc"},
           Case{head + "auth = vpc\ntrusted_profile_id = P\ntrusted_profile_crn = crn:v1:x\n",
                "/x: [KP] trusted_profile_id and trusted_profile_crn name the same thing: set "
                "one of them"},
       }) {
    Config c;
    std::string err;
    EXPECT_EQ(ParseConfig(k.text, "/x", &c, &err), -EINVAL) << k.text;
    EXPECT_EQ(err, k.error);
  }
  for (const char* url : {"http://127.0.0.1:8080", "https://169.254.169.254",
                          "http://metadata.example", "http://169.254.169.254/v1"}) {
    Config c;
    std::string err;
    ASSERT_EQ(
        ParseConfig(head + "auth = vpc\nmetadata_endpoint_url = " + url + "\n", "/x", &c, &err), 0)
        << err;
    EXPECT_EQ(CheckKmsSettings(c, &err), -EINVAL) << url;
    EXPECT_TRUE(StartsWith(err, "/x: [KP] metadata_endpoint_url: '")) << err;
  }
  // api-key, the default, still needs its key; the message names the other way.
  Config c;
  std::string err;
  ASSERT_EQ(ParseConfig(head, "/x", &c, &err), 0) << err;
  EXPECT_EQ(CheckKmsSettings(c, &err), -EINVAL);
  EXPECT_NE(err.find("[KP] api_key (or auth = vpc on an IBM Cloud VPC instance)"),
            std::string::npos)
      << err;
}

TEST(ConfigTest, LoadRefusesDirectoriesAndFlagsExposedKeys) {
  Config c;
  std::string err;
  EXPECT_LT(LoadConfig("/", &c, &err), 0);
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
  EXPECT_LT(LoadConfig("/nonexistent/hpcs.ini", &c, &err), 0);
  EXPECT_NE(err.find("/nonexistent/hpcs.ini"), std::string::npos);

  std::string path = ::testing::TempDir() + "/cfg.ini";
  std::ofstream(path) << "[KP]\napi_key=abc\n";
  chmod(path.c_str(), 0644);
  ASSERT_EQ(LoadConfig(path, &c, &err), 0) << err;
  EXPECT_TRUE(c.api_key_exposed);
  chmod(path.c_str(), 0600);
  ASSERT_EQ(LoadConfig(path, &c, &err), 0) << err;
  EXPECT_FALSE(c.api_key_exposed);
}

TEST(IniFileTest, KeysAndSectionsAreCaseInsensitive) {
  IniFile ini;
  ASSERT_EQ(IniFile::Parse("[Kp]\nAPI_Key = v\n", &ini, nullptr), 0);
  EXPECT_EQ(ini.Get("KP", "api_key").value_or(""), "v");
  EXPECT_FALSE(ini.Get("HFL", "api_key"));
}

TEST(ConfigTest, UpdateWrappedKeysDefaultsToYes) {
  Config c;
  std::string err;
  ASSERT_EQ(ParseConfig("[HFL]\nkey_dir = /k\n", "f", &c, &err), 0) << err;
  EXPECT_TRUE(c.update_wrapped_keys);
  ASSERT_EQ(ParseConfig("[HFL]\nupdate_wrapped_keys = no\n", "f", &c, &err), 0) << err;
  EXPECT_FALSE(c.update_wrapped_keys);
  EXPECT_LT(ParseConfig("[HFL]\nupdate_wrapped_keys = sometimes\n", "f", &c, &err), 0);
  EXPECT_NE(err.find("update_wrapped_keys"), std::string::npos) << err;
}

TEST(ConfigTest, KeyTimeoutDefaultsToFifteenMinutesAndZeroMeansNone) {
  Config c;
  std::string err;
  ASSERT_EQ(ParseConfig("[HFL]\nkey_dir = /k\n", "f", &c, &err), 0) << err;
  EXPECT_EQ(c.key_timeout_s, 900u);
  ASSERT_EQ(ParseConfig("[HFL]\nkey_timeout = 0\n", "f", &c, &err), 0) << err;
  EXPECT_EQ(c.key_timeout_s, 0u);
  ASSERT_EQ(ParseConfig("[HFL]\nkey_timeout = 86400\n", "f", &c, &err), 0) << err;
  EXPECT_EQ(c.key_timeout_s, 86400u);
  for (const char* bad : {"-1", "86401", "10m", "soon"}) {
    EXPECT_LT(ParseConfig(std::string("[HFL]\nkey_timeout = ") + bad + "\n", "f", &c, &err), 0)
        << bad;
    EXPECT_EQ(err,
              "f: [HFL] key_timeout must be 0 (no timeout) or a number of seconds from 1 to "
              "86400")
        << bad;
  }
}

// The [section] key pairs that an ini text sets, in lower case.
std::set<std::pair<std::string, std::string>> SettingsOf(const std::string& text) {
  std::set<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string section;
  for (std::string line; std::getline(in, line);) {
    std::string_view l = Trim(line);
    if (l.empty() || l[0] == '#' || l[0] == ';') continue;
    if (l.front() == '[' && l.back() == ']') {
      section = ToLower(l.substr(1, l.size() - 2));
      continue;
    }
    out.emplace(section, ToLower(Trim(l.substr(0, l.find_first_of("=:")))));
  }
  return out;
}

// The example that users copy to /etc parses, gives the values its comments
// promise, and sets only settings that the program reads, each in its section
// (FormatConfig writes every setting there is, where ParseConfig looks).
TEST(ConfigTest, TheExampleConfigParsesAndSetsOnlyKnownSettings) {
  const std::string path = testing::SourcePath("examples/hpcs-for-luks.ini");
  std::ifstream f(path, std::ios::binary);
  ASSERT_TRUE(f) << "cannot read " << path;
  std::stringstream text;
  text << f.rdbuf();
  Config c;
  std::string err;
  ASSERT_EQ(ParseConfig(text.str(), path, &c, &err), 0) << err;
  EXPECT_EQ(c.region, "us-south");
  EXPECT_EQ(c.endpoint_url, "https://us-south.kms.cloud.ibm.com");  // from the region
  EXPECT_EQ(c.iam_endpoint_url, "https://iam.cloud.ibm.com");
  EXPECT_EQ(c.service_instance_id, "00000000-0000-0000-0000-000000000000");
  EXPECT_TRUE(c.api_key_from_tpm);
  EXPECT_EQ(c.default_crk_uuid, "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(c.ca_file, "");
  EXPECT_EQ(c.key_dir, "/var/lib/hpcs-for-luks");
  EXPECT_EQ(c.tpm_blob, "/var/lib/hpcs-for-luks/api-key-blob.txt");
  EXPECT_FALSE(c.initramfs_plain_api_key);
  EXPECT_EQ(CheckKmsSettings(c, &err), 0) << err;

  const auto known = SettingsOf(FormatConfig(c, true));
  ASSERT_TRUE(known.contains({"kp", "api_key"}));
  ASSERT_TRUE(known.contains({"hfl", "tpm_blob"}));
  for (const auto& [section, key] : SettingsOf(text.str())) {
    EXPECT_TRUE(known.contains({section, key}))
        << path << ": [" << section << "] " << key << " is no setting the program reads there";
  }
}

}  // namespace
}  // namespace hpcs
