#include "kp_client.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <thread>

#include "json.h"
#include "strutil.h"

namespace hpcs {
namespace {

using namespace std::chrono_literals;

constexpr char kApiKey[] = "the-api-key-0123";
constexpr char kToken[] = "tok.en.value";

// A transport whose answers come from a function of the request.
class ScriptedTransport : public HttpTransport {
 public:
  using Handler = std::function<void(const HttpRequest&, HttpResponse*)>;
  explicit ScriptedTransport(Handler h) : handler_(std::move(h)) {}
  void Perform(std::span<HttpExchange* const> xs, Deadline,
               const std::function<void(HttpExchange&)>& on_done) override {
    ++batches;
    max_batch = std::max(max_batch, xs.size());
    for (HttpExchange* x : xs) {
      requests.push_back(x->request.url);
      std::string auth(x->request.auth_header.view());
      if (!auth.empty() && auth.back() == '\0') auth.pop_back();
      auth_headers.push_back(auth);
      headers.push_back(x->request.headers);
      handler_(x->request, &x->response);
      if (on_done) on_done(*x);
    }
  }
  std::vector<std::string> requests;
  std::vector<std::string> auth_headers;
  std::vector<std::vector<std::string>> headers;
  int batches = 0;
  size_t max_batch = 0;

 private:
  Handler handler_;
};

void Reply(HttpResponse* r, long status, std::string_view body) {
  r->status = status;
  r->body = Secret::FromString(body);
}

bool IsIam(const HttpRequest& rq) { return rq.url.find("/identity/token") != std::string::npos; }

void IssueToken(const HttpRequest& rq, HttpResponse* r) {
  EXPECT_NE(rq.body.view().find(std::string("apikey=") + kApiKey), std::string::npos);
  Reply(r, 200, std::string(R"({"access_token":")") + kToken + R"(","expires_in":3600})");
}

KpClient MakeClient(HttpTransport* t, RetryPolicy p = {}, Deadline d = Clock::now() + 10s) {
  p.base = 1ms;
  return KpClient({"https://kms.test", "https://iam.test", "inst-1"}, Secret::FromString(kApiKey),
                  t, p, d);
}

std::string UnwrapOk(std::string_view b64) {
  return std::string(R"({"plaintext":")") + std::string(b64) + R"(","keyVersion":{"id":"v"}})";
}

TEST(KpClientTest, UnwrapSendsTheRightHeadersAndDecodes) {
  ScriptedTransport t([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    EXPECT_EQ(rq.url, "https://kms.test/api/v2/keys/crk-1/actions/unwrap");
    EXPECT_EQ(rq.body.view(), R"({"ciphertext":"CT=="})");
    Reply(r, 200, UnwrapOk("AP8K"));
  });
  KpClient kp = MakeClient(&t);
  Secret pt;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk-1", "CT==\n", &pt, &err), 0) << err;
  ASSERT_EQ(pt.size(), 3u);
  EXPECT_EQ(pt.data()[1], 0xff);
  ASSERT_EQ(t.requests.size(), 2u);
  EXPECT_EQ(t.auth_headers[1], std::string("Authorization: Bearer ") + kToken);
  bool instance = false, correlation = false;
  for (const auto& h : t.headers[1]) {
    instance |= h == "Bluemix-Instance: inst-1";
    correlation |= StartsWith(h, "Correlation-Id: ") && h.size() == 16 + 36;
  }
  EXPECT_TRUE(instance);
  EXPECT_TRUE(correlation);
}

TEST(KpClientTest, OneTokenForManyCallsAndAllInOneBatch) {
  ScriptedTransport t([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  KpClient kp = MakeClient(&t);
  std::vector<KpCall> calls;
  for (int i = 0; i < 16; ++i) calls.push_back(KpClient::MakeUnwrapCall("crk", "c"));
  std::vector<KpCall*> ptrs;
  for (auto& c : calls) ptrs.push_back(&c);
  int done = 0;
  kp.Run(ptrs, [&](KpCall& c) {
    EXPECT_EQ(c.result, 0);
    ++done;
  });
  EXPECT_EQ(done, 16);
  EXPECT_EQ(kp.token_requests(), 1);
  EXPECT_EQ(t.max_batch, 16u);
}

TEST(KpClientTest, ExpiredTokenIsRefetchedOnce) {
  int kms_calls = 0, iam_calls = 0;
  ScriptedTransport t([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) {
      ++iam_calls;
      return IssueToken(rq, r);
    }
    if (++kms_calls == 1) return Reply(r, 401, R"({"resources":[{"errorMsg":"Unauthorized"}]})");
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  KpClient kp = MakeClient(&t);
  Secret pt;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;
  EXPECT_EQ(iam_calls, 2);
  EXPECT_EQ(pt.view(), "ABC");
}

TEST(KpClientTest, PersistentUnauthorizedFailsWithoutLooping) {
  int iam_calls = 0;
  ScriptedTransport t([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) {
      ++iam_calls;
      return IssueToken(rq, r);
    }
    Reply(r, 401, R"({"resources":[{"errorMsg":"Unauthorized: The user does not have access"}]})");
  });
  KpClient kp = MakeClient(&t);
  Secret pt;
  std::string err;
  EXPECT_LT(kp.Unwrap("crk", "c", &pt, &err), 0);
  EXPECT_EQ(iam_calls, 2);
  EXPECT_NE(err.find("HTTP 401: Unauthorized"), std::string::npos) << err;
  EXPECT_NE(err.find("correlation id "), std::string::npos) << err;
  EXPECT_EQ(err.find(kToken), std::string::npos);
  EXPECT_EQ(err.find(kApiKey), std::string::npos);
}

TEST(KpClientTest, RetriesTooManyRequestsHonouringRetryAfter) {
  int n = 0;
  ScriptedTransport t([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    if (++n <= 3) {
      r->retry_after_s = 0;
      return Reply(r, 429, R"({"resources":[{"errorMsg":"Too Many Requests"}]})");
    }
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  KpClient kp = MakeClient(&t);
  Secret pt;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;
  EXPECT_EQ(n, 4);
}

TEST(KpClientTest, GivesUpAfterMaxRetriesAndNeverRetries501) {
  int n = 0;
  ScriptedTransport t([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    ++n;
    Reply(r, rq.url.find("five01") != std::string::npos ? 501 : 503, "Service Unavailable");
  });
  RetryPolicy p;
  p.max_retries = 2;
  KpClient kp = MakeClient(&t, p);
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
  ScriptedTransport t([](const HttpRequest&, HttpResponse* r) {
    r->status = 0;
    r->transport_error = "Connection refused";
    r->transport_retryable = true;
  });
  RetryPolicy p;
  p.max_retries = -1;
  auto start = Clock::now();
  KpClient kp = MakeClient(&t, p, start + 300ms);
  KpCall call = KpClient::MakeUnwrapCall("crk", "c");
  KpCall* calls[] = {&call};
  kp.Run(calls);
  auto took = Clock::now() - start;
  EXPECT_LT(call.result, 0);
  EXPECT_TRUE(call.unreachable);
  EXPECT_NE(call.error.find("iam.test:443"), std::string::npos) << call.error;
  EXPECT_NE(call.error.find("Connection refused"), std::string::npos) << call.error;
  // It stops once the next attempt could not start before the deadline.
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 3s);
  EXPECT_GT(t.requests.size(), 2u);  // it did retry
}

TEST(KpClientTest, IamRejectsKey) {
  ScriptedTransport t([](const HttpRequest&, HttpResponse* r) {
    Reply(
        r, 400,
        R"({"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found.","context":{}})");
  });
  KpClient kp = MakeClient(&t);
  std::vector<KeyInfo> keys;
  std::string err;
  EXPECT_LT(kp.List(&keys, &err), 0);
  EXPECT_NE(err.find("https://iam.test"), std::string::npos) << err;
  EXPECT_NE(err.find("BXNIM0415E: Provided API key could not be found."), std::string::npos) << err;
  EXPECT_EQ(err.find(kApiKey), std::string::npos);
}

TEST(KpClientTest, ListFollowsPages) {
  ScriptedTransport t([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    int count = rq.url.find("offset=0") != std::string::npos ? 200 : 50;
    int base = count == 200 ? 0 : 200;
    std::string body = R"({"metadata":{"collectionTotal":250},"resources":[)";
    for (int i = 0; i < count; ++i) {
      if (i) body += ",";
      body += R"({"id":"id-)" + std::to_string(base + i) + R"(","name":"k"})";
    }
    Reply(r, 200, body + "]}");
  });
  KpClient kp = MakeClient(&t);
  std::vector<KeyInfo> keys;
  std::string err;
  ASSERT_EQ(kp.List(&keys, &err), 0) << err;
  ASSERT_EQ(keys.size(), 250u);
  EXPECT_EQ(keys[249].id, "id-249");
  EXPECT_EQ(t.requests.size(), 3u);  // token + 2 pages
}

TEST(KpClientTest, GarbageBodyIsAnError) {
  ScriptedTransport t([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    Reply(r, 200, "<html>proxy login</html>");
  });
  KpClient kp = MakeClient(&t);
  Secret pt;
  std::string err;
  EXPECT_LT(kp.Unwrap("crk", "c", &pt, &err), 0);
  EXPECT_NE(err.find("non-JSON"), std::string::npos) << err;
}

TEST(KpClientTest, GetDropsKeyMaterial) {
  ScriptedTransport t([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    Reply(r, 200, R"({"resources":[{"id":"k1","name":"n","payload":"c2VjcmV0"}]})");
  });
  KpClient kp = MakeClient(&t);
  std::string json, err;
  ASSERT_EQ(kp.Get("k1", &json, &err), 0) << err;
  EXPECT_NE(json.find("\"k1\""), std::string::npos);
  EXPECT_EQ(json.find("c2VjcmV0"), std::string::npos);
}

}  // namespace
}  // namespace hpcs

namespace hpcs {
namespace {

TEST(KpClientTest, MaxParallelBoundsTheBatch) {
  ScriptedTransport t([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  KpClient kp = MakeClient(&t);
  kp.set_max_parallel(2);
  std::vector<KpCall> calls;
  for (int i = 0; i < 5; ++i) calls.push_back(KpClient::MakeUnwrapCall("crk", "c"));
  std::vector<KpCall*> ptrs;
  for (auto& c : calls) ptrs.push_back(&c);
  kp.Run(ptrs);
  for (auto& c : calls) EXPECT_EQ(c.result, 0);
  EXPECT_EQ(t.max_batch, 2u);
  EXPECT_EQ(t.batches, 1 + 3);  // the token, then 2 + 2 + 1
}

}  // namespace
}  // namespace hpcs

namespace hpcs {
namespace {

TEST(KpClientTest, ListStopsWhenTheServiceIgnoresOffset) {
  ScriptedTransport t([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    std::string body = R"({"metadata":{"collectionTotal":200},"resources":[)";
    for (int i = 0; i < 200; ++i)
      body += (i ? "," : "") + (R"({"id":"id-)" + std::to_string(i) + R"("})");
    Reply(r, 200, body + "]}");
  });
  KpClient kp = MakeClient(&t);
  std::vector<KeyInfo> keys;
  std::string err;
  EXPECT_LT(kp.List(&keys, &err), 0);
  EXPECT_NE(err.find("same keys again"), std::string::npos) << err;
  EXPECT_EQ(t.requests.size(), 3u);
}

}  // namespace
}  // namespace hpcs

namespace hpcs {
namespace {

TEST(KpClientTest, TokenIsRefreshedAfterEightyPercentOfItsLifetime) {
  int iam_calls = 0;
  ScriptedTransport t([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) {
      ++iam_calls;
      return Reply(r, 200, R"({"access_token":"t","expires_in":1})");
    }
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  KpClient kp = MakeClient(&t);
  Secret pt;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;
  EXPECT_EQ(iam_calls, 1);  // still fresh
  std::this_thread::sleep_for(900ms);
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;
  EXPECT_EQ(iam_calls, 2);  // 0.9 s of a 1 s token: fetched anew before use
}

}  // namespace
}  // namespace hpcs
