#include "core/cmdline.h"

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
      "rd.hpcs.resolve=kms.test:10.0.2.2 rd.hpcs.resolve=iam.test:10.0.2.2 rd.hpcs.debug "
      "rd.hpcs.key_timeout=0");
  EXPECT_FALSE(b.disabled);
  EXPECT_TRUE(b.debug);
  EXPECT_EQ(b.timeout_s, 30);
  EXPECT_EQ(b.endpoint, "https://kms.test:1");
  EXPECT_EQ(b.iam, "https://iam.test");
  EXPECT_EQ(b.crk, "abc");
  EXPECT_EQ(b.proxy, "http://p:3128");
  EXPECT_EQ(b.keys, (std::vector<std::string>{"luks:root", "data"}));
  EXPECT_EQ(b.resolve.size(), 2u);
  EXPECT_EQ(b.key_timeout_s, 0u);
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
  BootOptions b = ParseBootOptions(
      "rd.hpcs.bogus=1 rd.hpcs.timeout=soon rd.hpcs.resolve=nocolon rd.hpcs.crk= "
      "rd.hpcs.key_timeout=-5");
  ASSERT_EQ(b.warnings.size(), 5u);
  EXPECT_NE(b.warnings[4].find("'rd.hpcs.key_timeout=-5': not 0 (no timeout) or"),
            std::string::npos)
      << b.warnings[4];
  EXPECT_FALSE(b.key_timeout_s);
  EXPECT_NE(b.warnings[0].find("rd.hpcs.bogus"), std::string::npos);
  EXPECT_FALSE(b.timeout_s);
}

TEST(CmdlineTest, OverridesBeatConfig) {
  Config c;
  c.endpoint_url = "https://a";
  c.default_crk_uuid = "x";
  BootOptions b = ParseBootOptions("rd.hpcs.endpoint=https://a:8443 rd.hpcs.crk=y");
  ApplyBootOptions(b, &c);
  EXPECT_EQ(c.endpoint_url, "https://a:8443");
  EXPECT_EQ(c.default_crk_uuid, "y");
  EXPECT_EQ(c.key_timeout_s, kDefaultKeyTimeoutS);  // not given: the config's
  ApplyBootOptions(ParseBootOptions("rd.hpcs.key_timeout=1800"), &c);
  EXPECT_EQ(c.key_timeout_s, 1800u);
}

// --- Boot options cannot redirect secrets (issue 10, item 1)

Config IbmConfig() {
  Config c;
  c.path = "/etc/hpcs-for-luks.ini";
  c.endpoint_url = "https://us-south.kms.cloud.ibm.com";
  c.iam_endpoint_url = "https://iam.cloud.ibm.com";
  return c;
}

TEST(BootEndpointsTest, AnotherHostCannotReceiveTheApiKeyOrTheToken) {
  Config c = IbmConfig();
  ApplyBootOptions(ParseBootOptions("rd.hpcs.iam=https://attacker.example "
                                    "rd.hpcs.endpoint=https://attacker.example:8443"),
                   &c);
  EXPECT_EQ(c.iam_endpoint_url, "https://iam.cloud.ibm.com");
  EXPECT_EQ(c.endpoint_url, "https://us-south.kms.cloud.ibm.com");
}

TEST(BootEndpointsTest, LookalikeHostsAreNotIbmCloud) {
  for (const char* url : {
           "https://iam.cloud.ibm.com.attacker.example",
           "https://attackercloud.ibm.com",
           "https://cloud.ibm.com",
           "https://iam.cloud.ibm.com@attacker.example",
           "https://attacker.example#.cloud.ibm.com",
           "https://attacker.example?.cloud.ibm.com",
           "https://attacker.example/.cloud.ibm.com",
           "https://attacker.example\\.cloud.ibm.com",
           "https://attacker%2eexample.cloud.ibm.com",
           "https://iam.cloud.ibm.com.",
           "https://my-app.us-south.codeengine.appdomain.cloud",  // anyone's app
           "https://hs-crypto.appdomain.cloud",
       }) {
    Config c = IbmConfig();
    ApplyBootOptions(ParseBootOptions(std::string("rd.hpcs.iam=") + url), &c);
    EXPECT_EQ(c.iam_endpoint_url, "https://iam.cloud.ibm.com") << url;
  }
}

// curl reads one slash after the scheme as two: it connects to evil.example,
// so the allow-list must judge that host, not the name after a later "://".
TEST(BootEndpointsTest, TheHostJudgedIsTheOneCurlConnectsTo) {
  std::string why;
  EXPECT_FALSE(BootUrlAllowed("https://iam.cloud.ibm.com",
                              "https:/evil.example/x://iam.cloud.ibm.com", &why));
  EXPECT_NE(why.find("curl would connect to 'evil.example'"), std::string::npos) << why;
}

// Here only the host counts: an http:// URL whose host may replace the
// configured one does, and CheckKmsSettings refuses it then, as in the config.
TEST(BootEndpointsTest, TheSchemeIsLeftToCheckKmsSettings) {
  std::string why;
  EXPECT_TRUE(BootUrlAllowed("https://kms.test:1", "http://KMS.test:2/", &why)) << why;
  EXPECT_FALSE(BootUrlAllowed("https://kms.test", "http://attacker.example", &why));
  EXPECT_EQ(why,
            "its host 'attacker.example' is neither the configured one ('kms.test') nor an "
            "IBM Cloud host");
  EXPECT_FALSE(BootUrlAllowed("https://kms.test", "http://u:s3cret@kms.test", &why));
  EXPECT_EQ(why, "'http://***@kms.test' holds a user name or password: no credentials go in a URL");
  EXPECT_FALSE(BootUrlAllowed("https://kms.test", "http:/attacker.example/x://kms.test", &why));
  EXPECT_EQ(why, "'http:/attacker.example/x://kms.test' is not an https:// URL");
}

TEST(BootEndpointsTest, TheConfiguredHostAndIbmCloudHostsAreAccepted) {
  for (const char* url : {
           "https://private.iam.cloud.ibm.com",
           "https://IAM.Cloud.IBM.com:443",
           "https://iam.cloud.ibm.com:8443",
           "https://private.us-south.kms.cloud.ibm.com",
           "https://api.us-south.hs-crypto.cloud.ibm.com:9730",
           "https://0c9e1a1f.api.private.us-south.hs-crypto.appdomain.cloud",
       }) {
    Config c = IbmConfig();
    std::vector<std::string> refused;
    ApplyBootOptions(ParseBootOptions(std::string("rd.hpcs.iam=") + url), &c, &refused);
    EXPECT_EQ(c.iam_endpoint_url, url);
    EXPECT_TRUE(refused.empty()) << url << ": " << refused[0];
  }
  // A private host of one's own, when the config names it.
  Config c = IbmConfig();
  c.endpoint_url = "https://kms.internal.example:8443";
  ApplyBootOptions(ParseBootOptions("rd.hpcs.endpoint=https://KMS.internal.example:9443"), &c);
  EXPECT_EQ(c.endpoint_url, "https://KMS.internal.example:9443");
}

TEST(BootEndpointsTest, ARefusalSaysWhyAndHowToAllowIt) {
  Config c = IbmConfig();
  std::vector<std::string> refused;
  ApplyBootOptions(ParseBootOptions("rd.hpcs.iam=https://attacker.example/x"), &c, &refused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0],
            "ignoring 'rd.hpcs.iam=https://attacker.example/x': its host 'attacker.example' is "
            "neither the configured one ('iam.cloud.ibm.com') nor an IBM Cloud host; using "
            "https://iam.cloud.ibm.com (to allow any host: [HFL] allow_boot_endpoints = yes in "
            "/etc/hpcs-for-luks.ini)");
}

TEST(BootEndpointsTest, AllowBootEndpointsAllowsAnyHost) {
  Config c = IbmConfig();
  c.allow_boot_endpoints = true;
  std::vector<std::string> refused;
  ApplyBootOptions(ParseBootOptions("rd.hpcs.iam=https://iam.test:8443 "
                                    "rd.hpcs.endpoint=https://kms.test:8443"),
                   &c, &refused);
  EXPECT_EQ(c.iam_endpoint_url, "https://iam.test:8443");
  EXPECT_EQ(c.endpoint_url, "https://kms.test:8443");
  EXPECT_TRUE(refused.empty());
}

}  // namespace
}  // namespace hpcs
