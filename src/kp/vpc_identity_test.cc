#include "kp/vpc_identity.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "base/strutil.h"
#include "kp/kp_client.h"
#include "kp/kp_client_testing.h"
#include "testing/test_doubles.h"

namespace hpcs {
namespace {

using namespace kp_testing;

constexpr char kMd[] = "http://169.254.169.254";
constexpr char kIdentity[] = "identity.Hq2rT9.token";
constexpr char kProfileToken[] = "profile.Lp8wZ3.token";

bool IsMdToken(const HttpRequest& rq) {
  return rq.url == std::string(kMd) + "/instance_identity/v1/token?version=2022-03-01";
}
bool IsMdIamToken(const HttpRequest& rq) {
  return rq.url == std::string(kMd) + "/instance_identity/v1/iam_token?version=2022-03-01";
}
bool Has(const std::vector<std::string>& headers, std::string_view h) {
  return std::find(headers.begin(), headers.end(), h) != headers.end();
}

// The metadata service as the docs describe it; every other request is the KMS.
struct Metadata {
  explicit Metadata(std::string body, long status = 200, std::string error = "")
      : profile_body(std::move(body)),
        iam_token_status(status),
        iam_token_error(std::move(error)) {}
  std::string profile_body;  // what the iam_token request must carry
  long iam_token_status;
  std::string iam_token_error;
  int kms_status = 200;
  int tokens = 0;

  void operator()(const HttpRequest& rq, HttpResponse* r) {
    if (IsMdToken(rq)) {
      EXPECT_EQ(rq.method, "PUT");
      EXPECT_TRUE(rq.metadata_service);
      EXPECT_TRUE(Has(rq.headers, "Metadata-Flavor: ibm"));
      EXPECT_TRUE(Has(rq.headers, "Content-Type: application/json"));
      EXPECT_EQ(rq.body.view(), R"({"expires_in":300})");
      EXPECT_TRUE(rq.auth_header.empty());
      return Reply(r, 200,
                   std::string(R"({"access_token":")") + kIdentity +
                       R"(","created_at":"2026-12-07T10:00:00Z","expires_at":)"
                       R"("2026-12-07T10:05:00Z","expires_in":300})");
    }
    if (IsMdIamToken(rq)) {
      EXPECT_EQ(rq.method, "POST");
      EXPECT_TRUE(rq.metadata_service);
      std::string auth(rq.auth_header.view());
      if (!auth.empty() && auth.back() == '\0') auth.pop_back();
      EXPECT_EQ(auth, std::string("Authorization: Bearer ") + kIdentity);
      EXPECT_EQ(rq.body.view(), profile_body);
      if (iam_token_status != 200) return Reply(r, iam_token_status, iam_token_error);
      ++tokens;
      return Reply(r, 200,
                   std::string(R"({"access_token":")") + kProfileToken +
                       R"(","created_at":"x","expires_at":"y","expires_in":3600})");
    }
    EXPECT_FALSE(rq.metadata_service) << rq.url;
    if (kms_status != 200) {
      return Reply(r, kms_status,
                   R"({"metadata":{"collectionTotal":1},"resources":[{"errorMsg":)"
                   R"("Unauthorized: The user does not have access to the specified resource"}]})");
    }
    Reply(r, 200, UnwrapOk("QUJD"));
  }
};

KpClient VpcClient(Fixture& f, TrustedProfile p, RetryPolicy rp = {},
                   std::chrono::seconds deadline = 10s) {
  rp.base = 1ms;
  return KpClient({"https://kms.test", "https://iam.test", "inst-1"},
                  MakeVpcTokenSource(kMd, std::move(p), "inst-1"), &f.http, rp,
                  f.clock.Now() + deadline, &f.clock);
}

TEST(VpcIdentityTest, IdentityTokenThenTheProfilesIamTokenThenTheKms) {
  Metadata md(R"({"trusted_profile":{"id":"Profile-1234"}})");
  Fixture f(std::ref(md));
  KpClient kp = VpcClient(f, {"Profile-1234", ""});
  Secret pt;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk-1", "CT==", &pt, &err), 0) << err;
  ASSERT_EQ(f.http.sent().size(), 3u);
  EXPECT_EQ(f.http.sent()[0].method, "PUT");
  EXPECT_TRUE(f.http.sent()[0].metadata_service);
  EXPECT_FALSE(f.http.sent()[2].metadata_service);
  EXPECT_EQ(f.http.sent()[2].auth, std::string("Authorization: Bearer ") + kProfileToken);
  for (const auto& s : f.http.sent()) {
    for (const auto& h : s.headers) {
      EXPECT_EQ(h.find(kIdentity), std::string::npos) << "tokens only in the auth header";
      EXPECT_EQ(h.find(kProfileToken), std::string::npos);
    }
  }
  // The KMS connection was opened while the tokens were on their way.
  ASSERT_EQ(f.http.preconnects.size(), 1u);
  EXPECT_EQ(f.http.preconnects[0].url, "https://kms.test");
  EXPECT_EQ(kp.token_requests(), 1);
}

TEST(VpcIdentityTest, ByCrnOrTheDefaultProfile) {
  {
    Metadata md(
        R"({"trusted_profile":{"crn":"crn:v1:bluemix:public:iam-identity::a/1::profile:P"}})");
    Fixture f(std::ref(md));
    KpClient kp = VpcClient(f, {"", "crn:v1:bluemix:public:iam-identity::a/1::profile:P"});
    Secret pt;
    std::string err;
    EXPECT_EQ(kp.Unwrap("crk-1", "CT==", &pt, &err), 0) << err;
  }
  Metadata md("");  // no body at all: the instance's default trusted profile
  Fixture f(std::ref(md));
  KpClient kp = VpcClient(f, {});
  Secret pt;
  std::string err;
  EXPECT_EQ(kp.Unwrap("crk-1", "CT==", &pt, &err), 0) << err;
  for (const auto& h : f.http.sent()[1].headers) EXPECT_FALSE(StartsWith(h, "Content-Type"));
}

TEST(VpcIdentityTest, AProfileNotLinkedIsNamedWithWhatToDo) {
  Metadata md(R"({"trusted_profile":{"id":"Profile-9"}})", 400,
              R"({"errors":[{"code":"invalid_trusted_profile","message":"The trusted profile )"
              R"(is not linked to this instance","more_info":"https://cloud.ibm.com/docs"}],)"
              R"("trace":"a1b2c3"})");
  Fixture f(std::ref(md));
  KpClient kp = VpcClient(f, {"Profile-9", ""});
  Secret pt;
  std::string err;
  EXPECT_LT(kp.Unwrap("crk-1", "CT==", &pt, &err), 0);
  EXPECT_NE(err.find("cannot get an IAM token for the trusted profile 'Profile-9' from the "
                     "metadata service at http://169.254.169.254: HTTP 400 "
                     "invalid_trusted_profile: The trusted profile is not linked to this "
                     "instance (trace a1b2c3)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("compute resources"), std::string::npos) << err;
  EXPECT_EQ(f.http.sent().size(), 2u) << "no KMS request without a token";
  EXPECT_EQ(err.find(kIdentity), std::string::npos);
}

TEST(VpcIdentityTest, AServiceThatIsOffIsRetriedThenNamedAsOff) {
  Fixture f([](const HttpRequest& rq, HttpResponse* r) {
    ASSERT_TRUE(IsMdToken(rq)) << rq.url;
    r->transport_error = "Failed to connect to 169.254.169.254 port 80: Connection refused";
    r->transport_retryable = true;
  });
  RetryPolicy rp;
  rp.max_retries = 3;
  KpClient kp = VpcClient(f, {"Profile-1", ""}, rp);
  Secret pt;
  std::string err;
  EXPECT_LT(kp.Unwrap("crk-1", "CT==", &pt, &err), 0);
  EXPECT_EQ(f.http.sent().size(), 4u) << "retried like any IAM request";
  EXPECT_NE(err.find("cannot get an instance identity token from the metadata service at "
                     "http://169.254.169.254"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("is the metadata service enabled on this instance?"), std::string::npos)
      << err;
}

TEST(VpcIdentityTest, AKmsThatRefusesTheTokenGetsOneNewTokenThenSaysWhichRoleIsMissing) {
  Metadata md(R"({"trusted_profile":{"id":"Profile-1"}})");
  md.kms_status = 401;
  Fixture f(std::ref(md));
  KpClient kp = VpcClient(f, {"Profile-1", ""});
  Secret pt;
  std::string err;
  EXPECT_LT(kp.Unwrap("crk-1", "CT==", &pt, &err), 0);
  EXPECT_EQ(md.tokens, 2) << "one new token after the 401, by both steps again";
  EXPECT_EQ(f.http.sent().size(), 6u);
  EXPECT_NE(err.find("grant it a Key Protect service role on instance inst-1"), std::string::npos)
      << err;
  EXPECT_NE(err.find("the trusted profile 'Profile-1'"), std::string::npos) << err;
}

TEST(VpcIdentityTest, TheTokenIsRenewedBeforeItExpires) {
  Metadata md("");
  Fixture f(std::ref(md));
  KpClient kp = VpcClient(f, {}, {}, 3600s);
  Secret pt;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk-1", "CT==", &pt, &err), 0) << err;
  f.clock.Advance(2900s);  // more than 80% of the 3600 s lifetime gone
  ASSERT_EQ(kp.Unwrap("crk-1", "CT==", &pt, &err), 0) << err;
  EXPECT_EQ(md.tokens, 2);
}

TEST(VpcIdentityTest, AnIdentityAnswerWithoutATokenIsNotSentOn) {
  Fixture f([](const HttpRequest& rq, HttpResponse* r) {
    EXPECT_TRUE(IsMdToken(rq)) << rq.url;
    Reply(r, 200, R"({"expires_in":300})");
  });
  KpClient kp = VpcClient(f, {});
  Secret pt;
  std::string err;
  EXPECT_LT(kp.Unwrap("crk-1", "CT==", &pt, &err), 0);
  EXPECT_EQ(f.http.sent().size(), 1u);
  EXPECT_NE(err.find("cannot get an instance identity token"), std::string::npos) << err;
  EXPECT_NE(err.find("no access_token"), std::string::npos) << err;
}

TEST(VpcIdentityTest, OnlyTheMetadataServiceMayBeNamed) {
  for (const char* ok : {"http://169.254.169.254", "http://api.metadata.cloud.ibm.com",
                         "https://api.metadata.cloud.ibm.com", "HTTP://169.254.169.254:80",
                         "https://API.metadata.cloud.ibm.com:443"}) {
    std::string err;
    EXPECT_EQ(CheckMetadataUrl(ok, &err), 0) << ok << ": " << err;
  }
  for (const char* bad :
       {"http://169.254.169.254:8080", "https://169.254.169.254", "http://127.0.0.1",
        "http://metadata.example", "http://api.metadata.cloud.ibm.com.evil.example",
        "http://169.254.169.254/instance_identity", "http://169.254.169.254?x",
        "http://user:pw@169.254.169.254", "ftp://169.254.169.254", "http:/169.254.169.254",
        "http://169.254.169.254.nip.io", ""}) {
    std::string err;
    EXPECT_EQ(CheckMetadataUrl(bad, &err), -EINVAL) << bad;
    EXPECT_EQ(err.find("pw"), std::string::npos) << err;
  }
  std::string err;
  CheckMetadataUrl("http://127.0.0.1", &err);
  EXPECT_EQ(err,
            "'http://127.0.0.1' is not allowed: the instance metadata service is "
            "http://169.254.169.254, http://api.metadata.cloud.ibm.com or (with secure access) "
            "https://api.metadata.cloud.ibm.com");
}

}  // namespace
}  // namespace hpcs
