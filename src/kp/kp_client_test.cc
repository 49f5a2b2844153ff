#include "kp/kp_client.h"

#include <gtest/gtest.h>

#include <functional>

#include "base/strutil.h"
#include "kp/kp_client_testing.h"
#include "testing/test_doubles.h"

namespace hpcs {
namespace {

using namespace kp_testing;

TEST(KpClientTest, UnwrapSendsTheRightHeadersAndDecodes) {
  Fixture f([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    EXPECT_EQ(rq.url, "https://kms.test/api/v2/keys/crk-1/actions/unwrap");
    EXPECT_EQ(rq.body.view(), R"({"ciphertext":"CT=="})");
    Reply(r, 200, UnwrapOk("AP8K"));
  });
  KpClient kp = f.Client();
  Secret pt;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk-1", "CT==\n", &pt, &err), 0) << err;
  ASSERT_EQ(pt.size(), 3u);
  EXPECT_EQ(pt.data()[1], 0xff);
  ASSERT_EQ(f.http.sent().size(), 2u);
  EXPECT_EQ(f.http.sent()[0].auth, "");  // nothing to IAM but the API key in the body
  EXPECT_EQ(f.http.sent()[1].auth, std::string("Authorization: Bearer ") + kToken);
  bool instance = false, correlation = false;
  for (const auto& h : f.http.sent()[1].headers) {
    instance |= h == "Bluemix-Instance: inst-1";
    correlation |= StartsWith(h, "Correlation-Id: ") && h.size() == 16 + 36;
    EXPECT_EQ(h.find(kToken), std::string::npos) << "the token only in the auth header";
  }
  EXPECT_TRUE(instance);
  EXPECT_TRUE(correlation);
}

TEST(KpClientTest, AadIsSentOnlyWhenGivenAndTheKeyVersionComesBack) {
  std::vector<std::string> bodies;
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    bodies.emplace_back(rq.body.view());
    if (rq.url.ends_with("/actions/wrap")) {
      return Reply(r, 200, R"({"ciphertext":"CT==","keyVersion":{"id":"kv-7"}})");
    }
    Reply(r, 200, R"({"plaintext":"AP8K","keyVersion":{"id":"kv-6"}})");
  });
  KpClient kp = f.Client();
  const std::vector<std::string> aad = {"luks2-uuid:0b5c", "two \"quoted\""};
  std::string ct, kv, err;
  ASSERT_EQ(kp.Wrap("crk", Secret::FromString("abc"), aad, &ct, &kv, &err), 0) << err;
  EXPECT_EQ(ct, "CT==");
  EXPECT_EQ(kv, "kv-7");
  Secret pt;
  ASSERT_EQ(kp.Unwrap("crk", "CT==\n", aad, &pt, &kv, &err), 0) << err;
  EXPECT_EQ(kv, "kv-6");
  EXPECT_EQ(pt.size(), 3u);
  ASSERT_EQ(kp.Unwrap("crk", "CT==", {}, &pt, nullptr, &err), 0) << err;
  ASSERT_EQ(kp.Wrap("crk", Secret::FromString("abc"), &ct, &err), 0) << err;
  ASSERT_EQ(bodies.size(), 4u);
  EXPECT_EQ(bodies[0], R"({"plaintext":"YWJj","aad":["luks2-uuid:0b5c","two \"quoted\""]})");
  EXPECT_EQ(bodies[1], R"({"ciphertext":"CT==","aad":["luks2-uuid:0b5c","two \"quoted\""]})");
  EXPECT_EQ(bodies[2], R"({"ciphertext":"CT=="})");  // no "aad" at all, not []
  EXPECT_EQ(bodies[3], R"({"plaintext":"YWJj"})");
  KpCall call = KpClient::MakeUnwrapCall("crk", "CT==", aad);
  EXPECT_EQ(call.body.view(), bodies[1]);
}

TEST(KpClientTest, OneTokenForManyCallsAllInFlightAtOnce) {
  Fixture f([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  f.http.latency = [](const HttpRequest&) { return 50ms; };
  KpClient kp = f.Client();
  std::vector<KpCall> calls;
  for (int i = 0; i < 16; ++i) calls.push_back(KpClient::MakeUnwrapCall("crk", "c"));
  int done = 0;
  kp.Run(Pointers(calls), [&](KpCall& c) {
    EXPECT_EQ(c.result, 0);
    ++done;
  });
  EXPECT_EQ(done, 16);
  EXPECT_EQ(kp.token_requests(), 1);
  EXPECT_EQ(f.http.max_in_flight, 16u);
  EXPECT_EQ(f.clock.slept, 100ms);  // the token, then all 16 side by side
}

TEST(KpClientTest, ExpiredTokenIsRefetchedOnce) {
  int kms_calls = 0, iam_calls = 0;
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) {
      ++iam_calls;
      return IssueToken(rq, r);
    }
    if (++kms_calls == 1) return Reply(r, 401, R"({"resources":[{"errorMsg":"Unauthorized"}]})");
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  KpClient kp = f.Client();
  Secret pt;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;
  EXPECT_EQ(iam_calls, 2);
  EXPECT_EQ(pt.view(), "ABC");
}

TEST(KpClientTest, RequestsInFlightWith401ShareOneNewToken) {
  int iam_calls = 0;
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) {
      ++iam_calls;
      std::string tok = "token-" + std::to_string(iam_calls);
      return Reply(r, 200, R"({"access_token":")" + tok + R"(","expires_in":3600})");
    }
    std::string auth(rq.auth_header.view().substr(0, rq.auth_header.size()));
    if (auth.find("token-1") != std::string::npos) return Reply(r, 401, "{}");
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  // The second request's 401 arrives after the first one has brought a new token.
  f.http.latency = [n = 0](const HttpRequest& rq) mutable {
    return IsIam(rq) ? 10ms : (++n == 2 ? 50ms : 1ms);
  };
  KpClient kp = f.Client();
  std::vector<KpCall> calls;
  for (int i = 0; i < 2; ++i) calls.push_back(KpClient::MakeUnwrapCall("crk", "c"));
  kp.Run(Pointers(calls));
  for (auto& c : calls) EXPECT_EQ(c.result, 0) << c.error;
  EXPECT_EQ(iam_calls, 2);
}

TEST(KpClientTest, PersistentUnauthorizedFailsWithoutLooping) {
  int iam_calls = 0;
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) {
      ++iam_calls;
      return IssueToken(rq, r);
    }
    Reply(r, 401, R"({"resources":[{"errorMsg":"Unauthorized: The user does not have access"}]})");
  });
  KpClient kp = f.Client();
  Secret pt;
  std::string err;
  EXPECT_LT(kp.Unwrap("crk", "c", &pt, &err), 0);
  EXPECT_EQ(iam_calls, 2);
  EXPECT_NE(err.find("HTTP 401: Unauthorized"), std::string::npos) << err;
  EXPECT_NE(err.find("correlation id "), std::string::npos) << err;
  EXPECT_EQ(err.find(kToken), std::string::npos);
  EXPECT_EQ(err.find(kApiKey), std::string::npos);
}

TEST(KpClientTest, WaitsForRetryAfterBeforeTryingAgain) {
  int n = 0;
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    if (++n <= 2) {
      r->retry_after_s = 2;
      return Reply(r, 429, R"({"resources":[{"errorMsg":"Too Many Requests"}]})");
    }
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  KpClient kp = f.Client();  // backoff alone would wait about a millisecond
  Secret pt;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;
  ASSERT_EQ(n, 3);
  const auto& sent = f.http.sent();  // the token, then three unwraps
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_GE(sent[2].at - sent[1].at, 2s);
  EXPECT_GE(sent[3].at - sent[2].at, 2s);
}

TEST(KpClientTest, RetryAfterPastTheDeadlineEndsTheCallAtOnce) {
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    r->retry_after_s = 5;
    Reply(r, 429, R"({"resources":[{"errorMsg":"Too Many Requests"}]})");
  });
  RetryPolicy p;
  p.max_retries = -1;
  KpClient kp = f.Client(p, 3s);
  Secret pt;
  std::string err;
  EXPECT_LT(kp.Unwrap("crk", "c", &pt, &err), 0);
  EXPECT_NE(err.find("the deadline was reached"), std::string::npos) << err;
  EXPECT_EQ(f.clock.slept, 0s);  // no pointless wait for an attempt that cannot happen
}

TEST(KpClientTest, GivesUpAfterMaxRetriesAndNeverRetries501) {
  int n = 0;
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    ++n;
    Reply(r, rq.url.find("five01") != std::string::npos ? 501 : 503, "Service Unavailable");
  });
  RetryPolicy p;
  p.max_retries = 2;
  KpClient kp = f.Client(p);
  Secret pt;
  std::string err;
  EXPECT_LT(kp.Unwrap("crk", "c", &pt, &err), 0);
  EXPECT_EQ(n, 3);
  EXPECT_NE(err.find("HTTP 503: unexpected non-JSON body: Service Unavailable"), std::string::npos)
      << err;
  EXPECT_NE(err.find("after 3 attempts"), std::string::npos) << err;
  n = 0;
  EXPECT_LT(kp.Unwrap("five01", "c", &pt, &err), 0);
  EXPECT_EQ(n, 1);
}

TEST(KpClientTest, UnreachableUntilTheDeadline) {
  Fixture f([](const HttpRequest&, HttpResponse* r) {
    r->status = 0;
    r->transport_error = "Connection refused";
    r->transport_retryable = true;
  });
  RetryPolicy p;
  p.max_retries = -1;
  KpClient kp = f.Client(p, 300ms);
  KpCall call = KpClient::MakeUnwrapCall("crk", "c");
  KpCall* calls[] = {&call};
  auto start = f.clock.Now();
  kp.Run(calls);
  EXPECT_EQ(call.result, -ETIMEDOUT);
  EXPECT_TRUE(call.unreachable);
  EXPECT_NE(call.error.find("iam.test:443"), std::string::npos) << call.error;
  EXPECT_NE(call.error.find("Connection refused"), std::string::npos) << call.error;
  EXPECT_NE(call.error.find("the deadline was reached"), std::string::npos) << call.error;
  // It kept trying, and stopped once the next attempt could not start in time.
  EXPECT_GT(f.http.sent().size(), 4u);
  EXPECT_GE(f.clock.Now() - start, 100ms);
  EXPECT_LE(f.clock.Now() - start, 300ms);
}

TEST(KpClientTest, IamRejectsKey) {
  Fixture f([](const HttpRequest&, HttpResponse* r) {
    Reply(
        r, 400,
        R"({"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found.","context":{}})");
  });
  KpClient kp = f.Client();
  std::vector<KeyInfo> keys;
  std::string err;
  EXPECT_LT(kp.List(&keys, &err), 0);
  EXPECT_NE(err.find("https://iam.test"), std::string::npos) << err;
  EXPECT_NE(err.find("BXNIM0415E: Provided API key could not be found."), std::string::npos) << err;
  EXPECT_EQ(err.find(kApiKey), std::string::npos);
  EXPECT_EQ(f.http.sent().size(), 1u);  // no KMS request without a token
}

TEST(KpClientTest, ListFollowsPages) {
  Fixture f([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    int count = rq.url.find("offset=0") != std::string::npos ? 200 : 50;
    int base = count == 200 ? 0 : 200;
    std::string body = R"({"metadata":{"collectionTotal":250},"resources":[)";
    for (int i = 0; i < count; ++i) {
      if (i) body += ",";
      body += R"({"id":"id-)" + std::to_string(base + i) + R"(","name":"n"})";
    }
    Reply(r, 200, body + "]}");
  });
  KpClient kp = f.Client();
  std::vector<KeyInfo> keys;
  std::string err;
  ASSERT_EQ(kp.List(&keys, &err), 0) << err;
  ASSERT_EQ(keys.size(), 250u);
  EXPECT_EQ(keys[249].id, "id-249");
  EXPECT_EQ(f.http.sent().size(), 3u);  // token + 2 pages
}

TEST(KpClientTest, ListStopsWhenTheServiceIgnoresOffset) {
  Fixture f([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    std::string body = R"({"metadata":{"collectionTotal":200},"resources":[)";
    for (int i = 0; i < 200; ++i)
      body += (i ? "," : "") + (R"({"id":"id-)" + std::to_string(i) + R"("})");
    Reply(r, 200, body + "]}");
  });
  KpClient kp = f.Client();
  std::vector<KeyInfo> keys;
  std::string err;
  EXPECT_LT(kp.List(&keys, &err), 0);
  EXPECT_NE(err.find("same keys again"), std::string::npos) << err;
  EXPECT_EQ(f.http.sent().size(), 3u);
}

TEST(KpClientTest, GarbageBodyIsAnError) {
  Fixture f([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    Reply(r, 200, "<html>proxy login</html>");
  });
  KpClient kp = f.Client();
  Secret pt;
  std::string err;
  EXPECT_LT(kp.Unwrap("crk", "c", &pt, &err), 0);
  EXPECT_EQ(err, "unwrap: unusable answer (HTTP 200, 24 bytes): not JSON");
}

TEST(KpClientTest, GetDropsKeyMaterial) {
  Fixture f([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    Reply(r, 200, R"({"resources":[{"id":"k1","name":"n","payload":"c2VjcmV0"}]})");
  });
  KpClient kp = f.Client();
  std::string json, err;
  ASSERT_EQ(kp.Get("k1", &json, &err), 0) << err;
  EXPECT_NE(json.find("\"k1\""), std::string::npos);
  EXPECT_EQ(json.find("c2VjcmV0"), std::string::npos);
}

TEST(KpClientTest, TokenIsRefreshedAfterEightyPercentOfItsLifetime) {
  int iam_calls = 0;
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) {
      ++iam_calls;
      return Reply(r, 200, R"({"access_token":"t","expires_in":100})");
    }
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  KpClient kp = f.Client({}, 1h);
  Secret pt;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;
  f.clock.Advance(70s);
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;
  EXPECT_EQ(iam_calls, 1);  // still fresh
  f.clock.Advance(20s);
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;
  EXPECT_EQ(iam_calls, 2);  // 90 s of a 100 s token: fetched anew before use
}

// --- A hostile server (issue 10, items 2 and 6)

TEST(KpClientTest, AHugeOrNegativeTokenLifetimeStillMeansOneTokenForTheRun) {
  for (const char* expires : {"1e300", "1e999", "-1e300", "0", "-5", "\"soon\""}) {
    Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
      if (IsIam(rq)) {
        return Reply(r, 200, std::string(R"({"access_token":"t","expires_in":)") + expires + "}");
      }
      Reply(r, 200, UnwrapOk("AP8K"));
    });
    KpClient kp = f.Client({}, std::chrono::hours(48));
    for (int i = 0; i < 3; ++i) {
      Secret pt;
      std::string err;
      ASSERT_EQ(kp.Unwrap("crk", "CT", &pt, &err), 0) << expires << ": " << err;
    }
    EXPECT_EQ(kp.token_requests(), 1) << "expires_in " << expires;
    // Past the longest lifetime (a day) a token is fetched again.
    f.clock.Advance(std::chrono::hours(25));
    Secret pt;
    std::string err;
    ASSERT_EQ(kp.Unwrap("crk", "CT", &pt, &err), 0) << err;
    EXPECT_EQ(kp.token_requests(), 2) << "expires_in " << expires;
  }
}

TEST(KpClientTest, AnUnusable2xxAnswerIsDescribedWithoutItsBody) {
  constexpr std::string_view kSecret = "c2VjcmV0LWtleS1ieXRlcy1oZXJl";  // base64
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    // The plaintext is there, under a name the API does not use.
    Reply(r, 200, std::string(R"({"plaintext_":")") + std::string(kSecret) + R"("})");
    r->content_type = "application/json";
  });
  KpClient kp = f.Client();
  Secret pt;
  std::string err;
  EXPECT_EQ(kp.Unwrap("crk", "CT", &pt, &err), -EPROTO);
  EXPECT_EQ(err, "unwrap: unusable answer (HTTP 200, 45 bytes of application/json): no plaintext");
  EXPECT_EQ(err.find(kSecret), std::string::npos);
}

}  // namespace
}  // namespace hpcs

namespace hpcs {
namespace {

using namespace kp_testing;

// The real root after the TPM lock: the initramfs's token is all there is.
TEST(KpClientHandedTokenTest, AHandedTokenIsUsedAndNeverRefreshed) {
  int iam_calls = 0, kms_calls = 0;
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) {
      ++iam_calls;
      return IssueToken(rq, r);
    }
    EXPECT_EQ(rq.auth_header.view(), "Authorization: Bearer handed-1");
    if (++kms_calls == 2) return Reply(r, 401, R"({"resources":[{"errorMsg":"Unauthorized"}]})");
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  KpClient kp = f.Client();
  kp.UseToken(Secret::FromString("handed-1"), f.clock.Now() + std::chrono::minutes(10),
              "the TPM is locked and the handed token was refused");
  Secret pt, token;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;
  Clock::time_point expires;
  ASSERT_TRUE(kp.CurrentToken(&token, &expires));
  EXPECT_EQ(token.view(), "handed-1");
  // A 401: no API key to get another token with.
  EXPECT_LT(kp.Unwrap("crk", "c", &pt, &err), 0);
  EXPECT_NE(err.find("the TPM is locked"), std::string::npos) << err;
  EXPECT_EQ(iam_calls, 0);
  EXPECT_EQ(kp.token_requests(), 0);
}

TEST(KpClientHandedTokenTest, AnExpiredHandedTokenFailsWithTheReason) {
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    ADD_FAILURE() << "no request expected: " << rq.url;
    Reply(r, 500, "{}");
  });
  KpClient kp = f.Client();
  kp.UseToken(Secret::FromString("old"), f.clock.Now() - std::chrono::seconds(1), "no API key");
  Secret pt;
  std::string err;
  EXPECT_LT(kp.Unwrap("crk", "c", &pt, &err), 0);
  EXPECT_NE(err.find("no API key"), std::string::npos) << err;
}

}  // namespace
}  // namespace hpcs
