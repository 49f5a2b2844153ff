#include "core/kms.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "testing/test_doubles.h"
#include "tpm/tpm2_blob.h"

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

namespace hpcs {
namespace {

#ifdef HPCS_HAVE_TPM
// api_key = TPM: the blob file goes to the TPM its first line names, within
// the deadline, and what comes out is the API key.
class ObtainApiKeyTest : public testing::Test {
 protected:
  void SetUp() override {
    config.path = dir.Write("hpcs.ini", "");
    config.api_key_from_tpm = true;
    config.tpm_blob = dir.Write("api-key-blob.txt", std::string(kTpm2BlobHeader) + "\nrest\n");
    options.deadline = Clock::now() + std::chrono::seconds(30);
    options.make_tpm = [this](TpmKind kind) {
      kinds.push_back(kind);
      return tpm;
    };
  }
  ScratchDir dir;
  Config config;
  KmsOptions options;
  std::shared_ptr<FakeTpm> tpm = std::make_shared<FakeTpm>(TpmKind::kTpm2);
  std::vector<TpmKind> kinds;
};

TEST_F(ObtainApiKeyTest, TheUnsealedKeyIsTheApiKey) {
  Secret key;
  std::string err;
  ASSERT_EQ(ObtainApiKey(config, options, &key, &err), 0) << err;
  EXPECT_EQ(key.view(), "fake-tpm-api-key");
  EXPECT_EQ(kinds, std::vector<TpmKind>{TpmKind::kTpm2});
  ASSERT_EQ(tpm->blobs_seen.size(), 1u);
  EXPECT_EQ(tpm->blobs_seen[0], std::string(kTpm2BlobHeader) + "\nrest\n");
}

TEST_F(ObtainApiKeyTest, AnUnsealErrorNamesTheBlobAndKeepsTheTpmsWords) {
  tpm->result = -EKEYREJECTED;
  tpm->error = "PCR 7 (SHA-256) changed since sealing";
  Secret key;
  std::string err;
  EXPECT_EQ(ObtainApiKey(config, options, &key, &err), -EKEYREJECTED);
  EXPECT_EQ(err, "api_key = TPM: cannot unseal '" + config.tpm_blob +
                     "': PCR 7 (SHA-256) changed since sealing");
  EXPECT_TRUE(key.empty());
}

TEST_F(ObtainApiKeyTest, ATpmThatNeverAnswersCannotHoldTheBootPastTheDeadline) {
  tpm->hang = true;
  options.deadline = Clock::now() + std::chrono::milliseconds(300);
  Secret key;
  std::string err;
  auto start = Clock::now();
  EXPECT_EQ(ObtainApiKey(config, options, &key, &err), -ETIMEDOUT);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));  // generous: a deadline, not speed
  EXPECT_NE(err.find("TPM 2.0"), std::string::npos) << err;
  tpm->Release();  // the abandoned worker may finish now
}

TEST_F(ObtainApiKeyTest, ABlobOfNeitherKindNeverReachesATpm) {
  config.tpm_blob = dir.Write("api-key-blob.txt", "the API key in plain text\n");
  Secret key;
  std::string err;
  EXPECT_EQ(ObtainApiKey(config, options, &key, &err), -EBADMSG);
  EXPECT_TRUE(kinds.empty());
  EXPECT_EQ(err.find("the API key in plain text"), std::string::npos) << "blob content leaked";
}

#else
// A build without TPM support says so, in the TPM code's words, before it
// looks for a blob (which such a build cannot have made).
TEST(ObtainApiKeyTest, ABuildWithoutTpmSaysSoBeforeReadingTheBlob) {
  Config c;
  c.path = "/etc/hpcs-for-luks.ini";
  c.api_key_from_tpm = true;
  c.tpm_blob = "/nonexistent/api-key-blob.txt";
  Secret key;
  std::string err;
  EXPECT_EQ(ObtainApiKey(c, KmsOptions{}, &key, &err), -EOPNOTSUPP);
  EXPECT_EQ(err.rfind("/etc/hpcs-for-luks.ini: this build has no TPM support", 0), 0u) << err;
  EXPECT_NE(err.find("HPCS_TPM=OFF"), std::string::npos) << err;
  EXPECT_EQ(err.find("/nonexistent"), std::string::npos) << err;
  EXPECT_TRUE(key.empty());
}
#endif  // HPCS_HAVE_TPM

// [KP] ca_file decides whom the connections trust: the rule of the other
// files we take instructions from (CheckTrusted) holds for it, before any
// connection is made.
TEST(OpenKmsTest, RefusesACaFileOthersCouldChange) {
  ScratchDir dir;
  Config c;
  c.path = "/etc/x.ini";
  c.endpoint_url = "https://kms.test";
  c.service_instance_id = "i";
  c.api_key = Secret::FromString("api-key-Mn3v");
  c.ca_file = dir.Write("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
  Kms kms;
  std::string err;
  ASSERT_EQ(OpenKms(c, {}, &kms, &err), 0) << err;

  ASSERT_EQ(chmod(c.ca_file.c_str(), 0666), 0);
  Kms refused;
  EXPECT_EQ(OpenKms(c, {}, &refused, &err), -EPERM);
  EXPECT_NE(err.find("/etc/x.ini: [KP] ca_file"), std::string::npos) << err;
  EXPECT_NE(err.find("'" + c.ca_file + "' is writable by group or others (mode 0666)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("chmod go-w '" + c.ca_file + "'"), std::string::npos) << err;
  EXPECT_FALSE(refused.client);

  ASSERT_EQ(chmod(c.ca_file.c_str(), 0644), 0);
  if (geteuid() == 0) {
    ASSERT_EQ(chown(c.ca_file.c_str(), 65534, 65534), 0);
    EXPECT_EQ(OpenKms(c, {}, &refused, &err), -EPERM);
    EXPECT_NE(err.find("'" + c.ca_file + "' is owned by uid 65534, not root"), std::string::npos)
        << err;
  }

  c.ca_file = dir.path() + "/missing.pem";
  EXPECT_EQ(OpenKms(c, {}, &refused, &err), -ENOENT);
  EXPECT_NE(err.find("/etc/x.ini: [KP] ca_file: cannot stat '" + c.ca_file + "'"),
            std::string::npos)
      << err;
}

}  // namespace
}  // namespace hpcs
