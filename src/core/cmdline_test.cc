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

TEST(CmdlineTest, TheTokenTimeoutIsOneToSixtySecondsAndMoreIsSixty) {
  EXPECT_EQ(ParseBootOptions("rd.hpcs.token_timeout=1").token_timeout_s, 1u);
  EXPECT_FALSE(ParseBootOptions("").token_timeout_s);
  BootOptions b = ParseBootOptions("rd.hpcs.token_timeout=300");
  EXPECT_EQ(b.token_timeout_s, 60u);
  ASSERT_EQ(b.warnings.size(), 1u);
  EXPECT_EQ(b.warnings[0], "'rd.hpcs.token_timeout=300': at most 60 s, so 60");
  for (const char* bad :
       {"rd.hpcs.token_timeout=0", "rd.hpcs.token_timeout=x", "rd.hpcs.token_timeout="}) {
    b = ParseBootOptions(bad);
    EXPECT_FALSE(b.token_timeout_s) << bad;
    ASSERT_EQ(b.warnings.size(), 1u) << bad;
    EXPECT_NE(b.warnings[0].find("from 1 to 60"), std::string::npos) << b.warnings[0];
  }
  Config c;
  ApplyBootOptions(ParseBootOptions("rd.hpcs.token_timeout=9"), &c);
  EXPECT_EQ(c.token_timeout_s, 9u);
}

TEST(CmdlineTest, TheGracePeriodIsZeroToSixtySeconds) {
  EXPECT_EQ(ParseBootOptions("rd.hpcs.grace=0").grace_s, 0);
  EXPECT_EQ(ParseBootOptions("rd.hpcs.grace=12").grace_s, 12);
  EXPECT_EQ(ParseBootOptions("rd.hpcs.grace=60").grace_s, 60);
  EXPECT_FALSE(ParseBootOptions("").grace_s);
  for (const char* bad :
       {"rd.hpcs.grace=61", "rd.hpcs.grace=-1", "rd.hpcs.grace=soon", "rd.hpcs.grace="}) {
    BootOptions b = ParseBootOptions(bad);
    EXPECT_FALSE(b.grace_s) << bad;
    ASSERT_EQ(b.warnings.size(), 1u) << bad;
    EXPECT_NE(b.warnings[0].find(bad), std::string::npos) << b.warnings[0];
  }
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

// --- Boot options cannot redirect secrets (issue 10, item 1; issue 22)

Config IbmConfig() {
  Config c;
  c.path = "/etc/hpcs-for-luks.ini";
  c.endpoint_url = "https://us-south.kms.cloud.ibm.com";
  c.iam_endpoint_url = "https://iam.cloud.ibm.com";
  return c;
}

// What `option`=`url` on the command line does to IbmConfig (with
// allow_boot_endpoints as given): the URL the config is left with, and the
// refusal if there was one.
struct Outcome {
  std::string url;
  std::string refused;
};
Outcome Boot(const std::string& option, const std::string& url, bool allow = false) {
  Config c = IbmConfig();
  c.allow_boot_endpoints = allow;
  std::vector<std::string> refused;
  ApplyBootOptions(ParseBootOptions(option + "=" + url), &c, &refused);
  EXPECT_LE(refused.size(), 1u);
  return {option == "rd.hpcs.iam" ? c.iam_endpoint_url : c.endpoint_url,
          refused.empty() ? "" : refused[0]};
}

constexpr char kInstance[] = "0c9e1a1f-5b2d-4c3e-9f8a-1234567890ab";

TEST(BootEndpointsTest, AnotherHostCannotReceiveTheApiKeyOrTheToken) {
  Config c = IbmConfig();
  ApplyBootOptions(ParseBootOptions("rd.hpcs.iam=https://attacker.example "
                                    "rd.hpcs.endpoint=https://attacker.example:8443"),
                   &c);
  EXPECT_EQ(c.iam_endpoint_url, "https://iam.cloud.ibm.com");
  EXPECT_EQ(c.endpoint_url, "https://us-south.kms.cloud.ibm.com");
}

// The finding of issue 22: *.cloud.ibm.com is multi-tenant. Anyone's Cloud
// Functions action has a URL there, and would receive the API key.
TEST(BootEndpointsTest, AFunctionsActionCannotReceiveTheApiKey) {
  const std::string action = "https://us-south.functions.cloud.ibm.com/api/v1/web/ns/default/x";
  Outcome o = Boot("rd.hpcs.iam", action);
  EXPECT_EQ(o.url, "https://iam.cloud.ibm.com");
  EXPECT_EQ(o.refused, "ignoring 'rd.hpcs.iam=" + action +
                           "': it has a path: a boot URL is https://HOST[:PORT] and nothing "
                           "more; using https://iam.cloud.ibm.com");
  // Not allowed with allow_boot_endpoints either: no service has a path there.
  EXPECT_EQ(Boot("rd.hpcs.iam", action, true).url, "https://iam.cloud.ibm.com");
  // Without the path, the host is not one of IAM's.
  o = Boot("rd.hpcs.iam", "https://us-south.functions.cloud.ibm.com");
  EXPECT_EQ(o.url, "https://iam.cloud.ibm.com");
  EXPECT_EQ(o.refused,
            "ignoring 'rd.hpcs.iam=https://us-south.functions.cloud.ibm.com': its host "
            "'us-south.functions.cloud.ibm.com' is neither the configured one "
            "('iam.cloud.ibm.com') nor an IAM host (iam.cloud.ibm.com, private.iam.cloud.ibm.com); "
            "using https://iam.cloud.ibm.com (to allow any host: [HFL] allow_boot_endpoints = yes "
            "in /etc/hpcs-for-luks.ini)");
  for (const char* url : {"https://us-south.functions.cloud.ibm.com",
                          "https://myapp.1a2b3c4d.us-south.codeengine.appdomain.cloud"}) {
    EXPECT_EQ(Boot("rd.hpcs.endpoint", url).url, "https://us-south.kms.cloud.ibm.com") << url;
  }
}

// A path, a query, a fragment or a user part: each refused, with allow_boot_endpoints
// too, and the refusal says which.
TEST(BootEndpointsTest, OnlyAHostAndAPortAreTaken) {
  struct Case {
    const char* url;
    const char* why;
  };
  for (const Case& c : {
           Case{"https://private.iam.cloud.ibm.com/x", "it has a path"},
           Case{"https://private.iam.cloud.ibm.com/identity/token", "it has a path"},
           Case{"https://private.iam.cloud.ibm.com/.", "it has a path"},
           Case{"https://private.iam.cloud.ibm.com//x", "it has a path"},
           Case{"https://private.iam.cloud.ibm.com?x=1", "it has a query"},
           Case{"https://private.iam.cloud.ibm.com/?", "it has a query"},
           Case{"https://private.iam.cloud.ibm.com#f", "it has a fragment"},
           Case{"https://private.iam.cloud.ibm.com:8443/a?b#c",
                "it has a path, a query and a fragment"},
           Case{"https://private.iam.cloud.ibm.com/a#b", "it has a path and a fragment"},
       }) {
    for (bool allow : {false, true}) {
      Outcome o = Boot("rd.hpcs.iam", c.url, allow);
      EXPECT_EQ(o.url, "https://iam.cloud.ibm.com") << c.url;
      EXPECT_EQ(o.refused, "ignoring 'rd.hpcs.iam=" + std::string(c.url) + "': " + c.why +
                               ": a boot URL is https://HOST[:PORT] and nothing more; using "
                               "https://iam.cloud.ibm.com")
          << c.url;
    }
  }
  for (const char* url :
       {"https://u:pw@private.iam.cloud.ibm.com", "https://u@iam.cloud.ibm.com"}) {
    for (bool allow : {false, true}) {
      Outcome o = Boot("rd.hpcs.iam", url, allow);
      EXPECT_EQ(o.url, "https://iam.cloud.ibm.com") << url;
      EXPECT_NE(o.refused.find("holds a user name or password"), std::string::npos) << o.refused;
      EXPECT_EQ(o.refused.find("pw"), std::string::npos) << o.refused;
    }
  }
  // A trailing slash is no path (the URL is read without it).
  EXPECT_EQ(Boot("rd.hpcs.iam", "https://private.iam.cloud.ibm.com/").url,
            "https://private.iam.cloud.ibm.com");
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
    EXPECT_EQ(Boot("rd.hpcs.iam", url).url, "https://iam.cloud.ibm.com") << url;
    EXPECT_EQ(Boot("rd.hpcs.endpoint", url).url, "https://us-south.kms.cloud.ibm.com") << url;
  }
}

TEST(BootEndpointsTest, IamTakesOnlyIamHosts) {
  for (const char* url : {
           "https://private.iam.cloud.ibm.com",
           "https://iam.cloud.ibm.com:8443",
           "https://IAM.Cloud.IBM.com:443",
       }) {
    Outcome o = Boot("rd.hpcs.iam", url);
    EXPECT_EQ(o.url, url);
    EXPECT_EQ(o.refused, "") << url;
  }
  const std::string instance = kInstance;
  for (const std::string& url : {
           std::string("https://us-south.kms.cloud.ibm.com"),  // a KMS host is no IAM host
           std::string("https://private.us-south.kms.cloud.ibm.com"),
           std::string("https://api.us-south.hs-crypto.cloud.ibm.com:9730"),
           "https://" + instance + ".api.us-south.hs-crypto.appdomain.cloud",
           std::string("https://x.iam.cloud.ibm.com"),
           std::string("https://private.us-south.iam.cloud.ibm.com"),
           std::string("https://iam.test.cloud.ibm.com"),  // staging: not taken
           std::string("https://private.private.iam.cloud.ibm.com"),
       }) {
    Outcome o = Boot("rd.hpcs.iam", url);
    EXPECT_EQ(o.url, "https://iam.cloud.ibm.com") << url;
    EXPECT_NE(o.refused.find("nor an IAM host"), std::string::npos) << url << ": " << o.refused;
  }
}

TEST(BootEndpointsTest, EndpointTakesOnlyKeyProtectAndHpcsHosts) {
  const std::string instance = kInstance;
  for (const std::string& url : {
           // Key Protect, public and private.
           std::string("https://eu-de.kms.cloud.ibm.com"),
           std::string("https://private.us-south.kms.cloud.ibm.com"),
           std::string("https://in-che.kms.cloud.ibm.com"),
           std::string("https://US-EAST.kms.cloud.ibm.com"),
           // HPCS, port-based and instance-based, public and private.
           std::string("https://api.us-south.hs-crypto.cloud.ibm.com:9730"),
           std::string("https://api.private.eu-gb.hs-crypto.cloud.ibm.com:8901"),
           "https://" + instance + ".api.us-east.hs-crypto.appdomain.cloud",
           "https://" + instance + ".api.private.eu-de.hs-crypto.appdomain.cloud",
           // Key Protect Dedicated.
           "https://" + instance + ".api.us-south.kms.appdomain.cloud",
       }) {
    Outcome o = Boot("rd.hpcs.endpoint", url);
    EXPECT_EQ(o.url, url);
    EXPECT_EQ(o.refused, "") << url;
  }
  for (const std::string& url : {
           std::string("https://iam.cloud.ibm.com"),  // an IAM host is no KMS host
           std::string("https://private.iam.cloud.ibm.com"),
           std::string("https://kms.cloud.ibm.com"),
           std::string("https://.kms.cloud.ibm.com"),
           std::string("https://us_south.kms.cloud.ibm.com"),
           std::string("https://-us-south.kms.cloud.ibm.com"),
           std::string("https://us-south-.kms.cloud.ibm.com"),
           std::string("https://x.us-south.kms.cloud.ibm.com"),
           std::string("https://private.x.us-south.kms.cloud.ibm.com"),
           std::string("https://api.us-south.kms.cloud.ibm.com.attacker.example"),
           std::string("https://us-south.functions.cloud.ibm.com"),
           std::string("https://uko.us-south.hs-crypto.cloud.ibm.com"),
           std::string("https://ep11.us-south.hs-crypto.cloud.ibm.com"),
           std::string("https://cert-mgr.us-south.hs-crypto.cloud.ibm.com"),
           std::string("https://api.hs-crypto.cloud.ibm.com"),
           "https://" + instance + ".uko.us-south.hs-crypto.appdomain.cloud",
           "https://" + instance + ".ep11.us-south.hs-crypto.appdomain.cloud",
           "https://" + instance + ".api.us-south.hs-crypto.cloud.ibm.com",
           "https://x." + instance + ".api.us-south.hs-crypto.appdomain.cloud",
           std::string(
               "https://0c9e1a1f.api.us-south.hs-crypto.appdomain.cloud"),  // no instance id
           std::string("https://anything.api.us-south.hs-crypto.appdomain.cloud"),
           std::string("https://api.us-south.hs-crypto.appdomain.cloud"),
           // Undocumented: a private Dedicated endpoint.
           "https://" + instance + ".api.private.us-south.kms.appdomain.cloud",
       }) {
    Outcome o = Boot("rd.hpcs.endpoint", url);
    EXPECT_EQ(o.url, "https://us-south.kms.cloud.ibm.com") << url;
    EXPECT_NE(o.refused.find("nor a Key Protect or HPCS host"), std::string::npos)
        << url << ": " << o.refused;
  }
}

// The configured host itself, at any port: a private host of one's own too.
TEST(BootEndpointsTest, TheConfiguredHostIsAccepted) {
  Config c = IbmConfig();
  c.endpoint_url = "https://kms.internal.example:8443";
  c.iam_endpoint_url = "https://iam.internal.example";
  std::vector<std::string> refused;
  ApplyBootOptions(ParseBootOptions("rd.hpcs.endpoint=https://KMS.internal.example:9443 "
                                    "rd.hpcs.iam=https://iam.internal.example:1/"),
                   &c, &refused);
  EXPECT_EQ(c.endpoint_url, "https://KMS.internal.example:9443");
  EXPECT_EQ(c.iam_endpoint_url, "https://iam.internal.example:1");
  EXPECT_TRUE(refused.empty()) << refused[0];
  // The other option's configured host is not this one's.
  c = IbmConfig();
  ApplyBootOptions(ParseBootOptions("rd.hpcs.iam=https://us-south.kms.cloud.ibm.com"), &c,
                   &refused);
  EXPECT_EQ(c.iam_endpoint_url, "https://iam.cloud.ibm.com");
}

// Every endpoint that a boot option changes is named, old and new, for a
// warning: an allowed one, and one allow_boot_endpoints lets through.
TEST(BootEndpointsTest, EachChangeIsReported) {
  Config c = IbmConfig();
  std::vector<std::string> refused, changed;
  ApplyBootOptions(ParseBootOptions("rd.hpcs.iam=https://private.iam.cloud.ibm.com "
                                    "rd.hpcs.endpoint=https://private.us-south.kms.cloud.ibm.com"),
                   &c, &refused, &changed);
  EXPECT_TRUE(refused.empty());
  EXPECT_EQ(changed, (std::vector<std::string>{
                         "rd.hpcs.endpoint changes the KMS endpoint from "
                         "https://us-south.kms.cloud.ibm.com to "
                         "https://private.us-south.kms.cloud.ibm.com",
                         "rd.hpcs.iam changes the IAM endpoint from https://iam.cloud.ibm.com to "
                         "https://private.iam.cloud.ibm.com",
                     }));
  // Refused, or the configured URL itself: no change.
  c = IbmConfig();
  changed.clear();
  ApplyBootOptions(ParseBootOptions("rd.hpcs.iam=https://attacker.example "
                                    "rd.hpcs.endpoint=https://us-south.kms.cloud.ibm.com/"),
                   &c, &refused, &changed);
  EXPECT_TRUE(changed.empty()) << changed[0];
  c = IbmConfig();
  c.allow_boot_endpoints = true;
  ApplyBootOptions(ParseBootOptions("rd.hpcs.iam=https://iam.test:8443"), &c, &refused, &changed);
  EXPECT_EQ(changed,
            (std::vector<std::string>{"rd.hpcs.iam changes the IAM endpoint from "
                                      "https://iam.cloud.ibm.com to https://iam.test:8443"}));
}

// curl reads one slash after the scheme as two: it connects to evil.example,
// so the allow-list must judge that host, not the name after a later "://".
TEST(BootEndpointsTest, TheHostJudgedIsTheOneCurlConnectsTo) {
  Outcome o = Boot("rd.hpcs.iam", "https:/evil.example/x://iam.cloud.ibm.com", true);
  EXPECT_EQ(o.url, "https://iam.cloud.ibm.com");
  EXPECT_NE(o.refused.find("curl would connect to 'evil.example'"), std::string::npos) << o.refused;
}

// Here only the host counts: an http:// URL whose host may replace the
// configured one does, and CheckKmsSettings refuses it then, as in the config.
TEST(BootEndpointsTest, TheSchemeIsLeftToCheckKmsSettings) {
  Config c = IbmConfig();
  c.endpoint_url = "https://kms.test:1";
  std::vector<std::string> refused;
  ApplyBootOptions(ParseBootOptions("rd.hpcs.endpoint=http://KMS.test:2/"), &c, &refused);
  EXPECT_EQ(c.endpoint_url, "http://KMS.test:2");
  EXPECT_TRUE(refused.empty()) << refused[0];
  for (const char* url : {"http://attacker.example", "http://us-south.kms.cloud.ibm.com/x"}) {
    EXPECT_EQ(Boot("rd.hpcs.endpoint", url).url, "https://us-south.kms.cloud.ibm.com") << url;
  }
  EXPECT_NE(Boot("rd.hpcs.iam", "http://u:s3cret@iam.cloud.ibm.com")
                .refused.find("'http://***@iam.cloud.ibm.com' holds a user name or password"),
            std::string::npos);
  EXPECT_NE(
      Boot("rd.hpcs.iam", "http:/attacker.example/x://iam.cloud.ibm.com")
          .refused.find("'http:/attacker.example/x://iam.cloud.ibm.com' is not an https:// URL"),
      std::string::npos);
}

// allow_boot_endpoints lifts the host rule, not the rest.
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
  Outcome o = Boot("rd.hpcs.endpoint", "https://kms.test:8443/api", true);
  EXPECT_EQ(o.url, "https://us-south.kms.cloud.ibm.com");
  EXPECT_NE(o.refused.find("it has a path"), std::string::npos) << o.refused;
}

}  // namespace
}  // namespace hpcs
