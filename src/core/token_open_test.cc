#include "core/token_open.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "kp/kp_client_testing.h"
#include "testing/versioned_kms_testing.h"

namespace hpcs {
namespace {

constexpr char kUuid[] = "0B5C7C2A-6a1e-4f55-9d0e-3c1f8b2e9a10";
constexpr char kAad[] = R"(["luks2-uuid:0b5c7c2a-6a1e-4f55-9d0e-3c1f8b2e9a10"])";
constexpr char kPassphrase[] = "bm90IGEgcmVhbCBwYXNzcGhyYXNlIGJ1dCA0NCBjaGFycw==";

class TokenOpenTest : public ::testing::Test {
 protected:
  TokenOpenTest() {
    config_.path = "/etc/hpcs-for-luks.ini";
    config_.endpoint_url = "https://kms.test";
    config_.service_instance_id = "inst";
  }
  // A token as WrapHpcsToken makes it, the KMS's calls forgotten.
  HpcsToken Made() {
    HpcsToken t;
    std::string err;
    EXPECT_EQ(WrapHpcsToken(f_.kp, config_, "crk-1", kUuid, Secret::FromString(kPassphrase), {1},
                            "luks:root", &t, &err),
              0)
        << err;
    f_.kms.calls.clear();
    f_.kms.aads.clear();
    return t;
  }
  VersionedKmsFixture f_;
  Config config_;
};

TEST_F(TokenOpenTest, WrapFillsEveryFieldChecksItAndOpenUnwrapsWithTheAad) {
  HpcsToken t;
  std::string err;
  ASSERT_EQ(WrapHpcsToken(f_.kp, config_, "crk-1", kUuid, Secret::FromString(kPassphrase), {1, 3},
                          "luks:root", &t, &err),
            0)
      << err;
  EXPECT_EQ(t.keyslots, (std::vector<int>{1, 3}));
  EXPECT_EQ(t.version, 1);
  EXPECT_EQ(t.kms, "https://kms.test");
  EXPECT_EQ(t.instance, "inst");
  EXPECT_EQ(t.crk, "crk-1");
  EXPECT_EQ(t.key_version, "v1");
  EXPECT_EQ(t.bound_to, "luks2-uuid");
  EXPECT_EQ(t.name, "luks:root");
  EXPECT_EQ(t.ciphertext, f_.kms.Wrap("crk-1", kPassphrase, kAad));
  // The check after the wrap: one unwrap, with the same AAD.
  EXPECT_EQ(f_.kms.calls, (std::vector<std::string>{"wrap crk-1", "unwrap crk-1"}));
  EXPECT_EQ(f_.kms.aads, (std::vector<std::string>{kAad, kAad}));

  f_.kms.Rotate("crk-1");
  f_.kms.calls.clear();
  f_.kms.aads.clear();
  Secret pass;
  std::string version;
  ASSERT_EQ(OpenHpcsToken(f_.kp, config_, t, kUuid, &pass, &version, &err), 0) << err;
  EXPECT_EQ(pass.view(), kPassphrase);
  EXPECT_EQ(version, "v1");  // what made the ciphertext, not the newest
  EXPECT_EQ(f_.kms.calls, std::vector<std::string>{"unwrap crk-1"});
  EXPECT_EQ(f_.kms.aads, std::vector<std::string>{kAad});
  ASSERT_EQ(OpenHpcsToken(f_.kp, config_, t, kUuid, &pass, nullptr, &err), 0) << err;
}

TEST_F(TokenOpenTest, AnotherInstanceIsRefusedBeforeAnyCall) {
  HpcsToken t = Made();
  t.instance = "other-inst";
  Secret pass = Secret::FromString("kept");
  std::string err;
  EXPECT_EQ(OpenHpcsToken(f_.kp, config_, t, kUuid, &pass, nullptr, &err), -EXDEV);
  EXPECT_EQ(err,
            "the token was made with Key Protect instance 'other-inst', and "
            "/etc/hpcs-for-luks.ini names instance 'inst'");
  EXPECT_TRUE(f_.kms.calls.empty());
  EXPECT_EQ(pass.view(), "kept");
}

TEST_F(TokenOpenTest, AnotherVolumesUuidDoesNotUnwrap) {
  HpcsToken t = Made();
  Secret pass;
  std::string err;
  int r = OpenHpcsToken(f_.kp, config_, t, "0b5c7c2a-6a1e-4f55-9d0e-3c1f8b2e9a11", &pass, nullptr,
                        &err);
  EXPECT_LT(r, 0);
  EXPECT_NE(r, -EXDEV);
  EXPECT_NE(err.find("HTTP 422 UNPROCESSABLE_CIPHERTEXT_ERR"), std::string::npos) << err;
  EXPECT_EQ(f_.kms.aads,
            std::vector<std::string>{R"(["luks2-uuid:0b5c7c2a-6a1e-4f55-9d0e-3c1f8b2e9a11"])"});
  EXPECT_EQ(pass.size(), 0u);
  // A malformed UUID is no call at all.
  EXPECT_EQ(OpenHpcsToken(f_.kp, config_, t, "not-a-uuid", &pass, nullptr, &err), -EINVAL);
  EXPECT_EQ(f_.kms.calls.size(), 1u);
}

TEST_F(TokenOpenTest, TheKpClientsErrorPassesThrough) {
  HpcsToken t = Made();
  f_.kms.deleted.push_back("crk-1");
  Secret pass;
  std::string err;
  EXPECT_EQ(OpenHpcsToken(f_.kp, config_, t, kUuid, &pass, nullptr, &err), -EPROTO);
  EXPECT_NE(err.find("KEY_NOT_FOUND_ERR"), std::string::npos) << err;
}

// Not reached before the deadline: -ETIMEDOUT (or -EHOSTUNREACH), also when
// it answers only 503 until then; never -EPROTO, which says "refused".
TEST(TokenOpenUnreachableTest, AKmsNotReachedInTimeIsATimeout) {
  HpcsToken t;
  t.instance = "inst-1";
  t.crk = "crk";
  t.ciphertext = "CT";
  Config c;
  c.service_instance_id = "inst-1";
  for (bool refused : {true, false}) {
    kp_testing::Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
      if (kp_testing::IsIam(rq)) return kp_testing::IssueToken(rq, r);
      if (refused) {
        r->transport_error = "Connection refused";
        r->transport_retryable = true;
        return;
      }
      kp_testing::Reply(r, 503, R"({"resources":[{"errorMsg":"Service Unavailable"}]})");
    });
    KpClient kp = f.Client(RetryPolicy{.max_retries = -1}, std::chrono::seconds(5));
    Secret pass;
    std::string err;
    int r = OpenHpcsToken(kp, c, t, kUuid, &pass, nullptr, &err);
    EXPECT_TRUE(r == -ETIMEDOUT || r == -EHOSTUNREACH) << refused << ": " << r << " " << err;
    EXPECT_NE(err.find(refused ? "Connection refused" : "HTTP 503"), std::string::npos) << err;
  }
}

TEST_F(TokenOpenTest, APassphraseOfTheWrongShapeIsRefused) {
  const std::string too_long(kMaxTokenPassphrase + 1, 'p');
  for (const std::string& bad : {std::string("two\nlines"), std::string("nul\0x", 5), too_long}) {
    HpcsToken t;
    std::string err;
    EXPECT_EQ(
        WrapHpcsToken(f_.kp, config_, "crk-1", kUuid, Secret::FromString(bad), {1}, "", &t, &err),
        -EBADMSG)
        << err;
    EXPECT_TRUE(f_.kms.calls.empty()) << "refused before the KMS is asked";
    // And one that the KMS hands back is refused the same way.
    HpcsToken stored = Made();
    stored.ciphertext = f_.kms.Wrap("crk-1", bad, kAad);
    Secret pass = Secret::FromString("kept");
    EXPECT_EQ(OpenHpcsToken(f_.kp, config_, stored, kUuid, &pass, nullptr, &err), -EBADMSG);
    EXPECT_NE(err.find("the unwrapped passphrase"), std::string::npos) << err;
    EXPECT_EQ(pass.view(), "kept");
    f_.kms.calls.clear();
  }
  HpcsToken t;
  std::string err;
  EXPECT_EQ(WrapHpcsToken(f_.kp, config_, "crk-1", kUuid, Secret(), {1}, "", &t, &err), -EBADMSG);
  EXPECT_EQ(
      WrapHpcsToken(f_.kp, config_, "crk-1", kUuid,
                    Secret::FromString(std::string(kMaxTokenPassphrase, 'p')), {1}, "", &t, &err),
      0)
      << err;
}

TEST_F(TokenOpenTest, AWrappingThatUnwrapsToOtherBytesIsNotReturned) {
  f_.kms.spoil_from = 0;
  HpcsToken t;
  t.crk = "untouched";
  std::string err;
  EXPECT_EQ(WrapHpcsToken(f_.kp, config_, "crk-1", kUuid, Secret::FromString(kPassphrase), {1}, "",
                          &t, &err),
            -EIO);
  EXPECT_NE(err.find("other bytes"), std::string::npos) << err;
  EXPECT_EQ(t.crk, "untouched");
  EXPECT_EQ(f_.kms.calls, (std::vector<std::string>{"wrap crk-1", "unwrap crk-1"}));
}

TEST_F(TokenOpenTest, ATokenNoReaderWouldTakeIsNotMade) {
  HpcsToken t;
  std::string err;
  EXPECT_EQ(WrapHpcsToken(f_.kp, config_, "crk-1", kUuid, Secret::FromString(kPassphrase), {}, "",
                          &t, &err),
            -EINVAL);
  EXPECT_NE(err.find("'keyslots'"), std::string::npos) << err;
  EXPECT_EQ(f_.kms.calls, std::vector<std::string>{"wrap crk-1"});
}

}  // namespace
}  // namespace hpcs
