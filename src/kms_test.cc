#include "kms.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace hpcs {
namespace {

Config WithEndpoints(std::string kms, std::string iam, std::vector<std::string> pins) {
  Config c;
  c.endpoint_url = std::move(kms);
  c.iam_endpoint_url = std::move(iam);
  c.resolve = std::move(pins);
  return c;
}

TEST(ExpandResolvePinsTest, OneEntryPerPortOfTheNamedHost) {
  Config c = WithEndpoints("https://kms.test:8443", "https://iam.test",
                           {"kms.test:10.0.2.2", "IAM.test:10.0.2.3", "other.test:10.9.9.9"});
  std::vector<std::string> out;
  std::string err;
  ASSERT_EQ(ExpandResolvePins(c, &out, &err), 0) << err;
  EXPECT_EQ(out, (std::vector<std::string>{"kms.test:8443:10.0.2.2", "IAM.test:443:10.0.2.3"}));
}

TEST(ExpandResolvePinsTest, SameHostTwoPortsAndNoDuplicates) {
  Config c = WithEndpoints("https://both.test:1", "https://both.test:2",
                           {"both.test:192.0.2.1", "both.test:192.0.2.1"});
  std::vector<std::string> out;
  ASSERT_EQ(ExpandResolvePins(c, &out, nullptr), 0);
  EXPECT_EQ(out, (std::vector<std::string>{"both.test:1:192.0.2.1", "both.test:2:192.0.2.1"}));
}

TEST(ExpandResolvePinsTest, Ipv6AddressesGoInBrackets) {
  Config c = WithEndpoints("https://kms.test", "https://iam.test",
                           {"kms.test:fd00::2", "iam.test:[fd00::3]"});
  std::vector<std::string> out;
  ASSERT_EQ(ExpandResolvePins(c, &out, nullptr), 0);
  EXPECT_EQ(out, (std::vector<std::string>{"kms.test:443:[fd00::2]", "iam.test:443:[fd00::3]"}));
}

TEST(ExpandResolvePinsTest, MalformedPinsAreRefusedByName) {
  for (const char* pin : {"kms.test", "kms.test:", ":10.0.0.1"}) {
    Config c = WithEndpoints("https://kms.test", "https://iam.test", {pin});
    std::vector<std::string> out = {"untouched"};
    std::string err;
    EXPECT_EQ(ExpandResolvePins(c, &out, &err), -EINVAL) << pin;
    EXPECT_EQ(err, "resolve pin '" + std::string(pin) + "' is not HOST:ADDRESS");
    EXPECT_EQ(out, std::vector<std::string>{"untouched"});
  }
}

TEST(OpenKmsTest, RefusesIncompleteSettingsAndEmptyKeys) {
  Config c;
  c.path = "/etc/x.ini";
  Kms kms;
  std::string err;
  EXPECT_EQ(OpenKms(c, {}, &kms, &err), -EINVAL);
  EXPECT_NE(err.find("/etc/x.ini: missing or empty"), std::string::npos) << err;
  EXPECT_FALSE(kms.client);
  c.endpoint_url = "https://kms.test";
  c.service_instance_id = "i";
  c.api_key = Secret::FromString("api-key-Mn3v");
  c.resolve = {"bad"};
  EXPECT_EQ(OpenKms(c, {}, &kms, &err), -EINVAL);
  EXPECT_NE(err.find("resolve pin 'bad'"), std::string::npos) << err;
  c.resolve.clear();
  ASSERT_EQ(OpenKms(c, {}, &kms, &err), 0) << err;
  EXPECT_TRUE(kms.client && kms.http);
  Secret key;
  ASSERT_EQ(ObtainApiKey(c, {}, &key, &err), 0);
  EXPECT_EQ(key.view(), "api-key-Mn3v");
}

}  // namespace
}  // namespace hpcs
