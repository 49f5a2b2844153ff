#include "kp_client.h"

#include <gtest/gtest.h>

#include <functional>

#include "strutil.h"
#include "test_doubles.h"

namespace hpcs {
namespace {

using namespace std::chrono_literals;

constexpr char kApiKey[] = "api-key-Zq7vR2mX9pL4";
constexpr char kToken[] = "tok.en-Wm3kD8sQ.value";

void Reply(HttpResponse* r, long status, std::string_view body) {
  r->status = status;
  r->body = Secret::FromString(body);
}

bool IsIamUrl(const std::string& url) { return url.find("/identity/token") != std::string::npos; }
bool IsIam(const HttpRequest& rq) { return IsIamUrl(rq.url); }

void IssueToken(const HttpRequest& rq, HttpResponse* r) {
  EXPECT_NE(rq.body.view().find(std::string("apikey=") + kApiKey), std::string::npos);
  Reply(r, 200, std::string(R"({"access_token":")") + kToken + R"(","expires_in":3600})");
}

std::string UnwrapOk(std::string_view b64) {
  return std::string(R"({"plaintext":")") + std::string(b64) + R"(","keyVersion":{"id":"v"}})";
}

// A client on a fake clock: nothing here sleeps for real.
struct Fixture {
  explicit Fixture(ScriptedTransport::Handler h) : http(&clock, std::move(h)) {}
  KpClient Client(RetryPolicy p = {}, std::chrono::milliseconds deadline = 10s) {
    p.base = 1ms;
    return KpClient({"https://kms.test", "https://iam.test", "inst-1"}, Secret::FromString(kApiKey),
                    &http, p, clock.Now() + deadline, &clock);
  }
  FakeClock clock;
  ScriptedTransport http;
};

std::vector<KpCall*> Pointers(std::vector<KpCall>& calls) {
  std::vector<KpCall*> p;
  for (auto& c : calls) p.push_back(&c);
  return p;
}

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

TEST(KpClientTest, TheKmsHandshakeIsMadeWhileTheTokenIsOnItsWayOncePerClient) {
  int iam = 0;
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) {
      // The second token is asked for after a 401: the KMS is connected by then.
      ++iam;
      return IssueToken(rq, r);
    }
    if (iam == 1) return Reply(r, 401, R"({"errors":[{"errorMsg":"expired"}]})");
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  f.http.latency = [](const HttpRequest&) { return 50ms; };
  KpClient kp = f.Client();
  const Clock::time_point start = f.clock.Now();
  std::vector<KpCall> calls;
  for (int i = 0; i < 4; ++i) calls.push_back(KpClient::MakeUnwrapCall("crk", "c"));
  kp.Run(Pointers(calls));
  for (const auto& c : calls) EXPECT_EQ(c.result, 0) << c.error;
  Secret pt;
  std::string err;
  ASSERT_EQ(kp.Unwrap("crk", "c", &pt, &err), 0) << err;  // a second run of the same client
  EXPECT_EQ(kp.token_requests(), 2);
  ASSERT_EQ(f.http.preconnects.size(), 1u);
  EXPECT_EQ(f.http.preconnects[0].url, "https://kms.test");
  EXPECT_EQ(f.http.preconnects[0].at, start);  // beside the token request, not after it
  ASSERT_FALSE(f.http.sent().empty());
  EXPECT_TRUE(IsIamUrl(f.http.sent()[0].url));
  EXPECT_EQ(f.http.sent()[0].at, start);
}

TEST(KpClientTest, NoConnectionAheadWhenIamAndTheKmsShareAHostOrItIsTurnedOff) {
  Fixture f([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  KpClient same({"https://kp.test:8443", "https://kp.test:8443", "inst-1"},
                Secret::FromString(kApiKey), &f.http, {}, f.clock.Now() + 10s, &f.clock);
  Secret pt;
  std::string err;
  ASSERT_EQ(same.Unwrap("crk", "c", &pt, &err), 0) << err;
  KpClient off = f.Client();
  off.set_preconnect(false);
  ASSERT_EQ(off.Unwrap("crk", "c", &pt, &err), 0) << err;
  EXPECT_TRUE(f.http.preconnects.empty());
  // Another port is another host.
  KpClient other_port({"https://kp.test:8443", "https://kp.test", "inst-1"},
                      Secret::FromString(kApiKey), &f.http, {}, f.clock.Now() + 10s, &f.clock);
  ASSERT_EQ(other_port.Unwrap("crk", "c", &pt, &err), 0) << err;
  ASSERT_EQ(f.http.preconnects.size(), 1u);
  EXPECT_EQ(f.http.preconnects[0].url, "https://kp.test:8443");
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

TEST(KpClientTest, MaxParallelIsASlidingWindow) {
  Fixture f([](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  // The first unwrap is slow; the other four pass it through the second place.
  f.http.latency = [n = 0](const HttpRequest& rq) mutable {
    return IsIam(rq) ? 0ms : (++n == 1 ? 1000ms : 10ms);
  };
  KpClient kp = f.Client();
  kp.set_max_parallel(2);
  std::vector<KpCall> calls;
  for (int i = 0; i < 5; ++i) calls.push_back(KpClient::MakeUnwrapCall("crk", "c"));
  std::vector<KpCall*> order;
  kp.Run(Pointers(calls), [&](KpCall& c) { order.push_back(&c); });
  for (auto& c : calls) EXPECT_EQ(c.result, 0);
  EXPECT_EQ(f.http.max_in_flight, 2u);
  ASSERT_EQ(order.size(), 5u);
  EXPECT_EQ(order.back(), &calls[0]);
  EXPECT_EQ(f.clock.slept, 1000ms);  // batches of two would take 1020 ms
}

TEST(KpClientTest, ARetryDoesNotWaitForSlowerRequests) {
  int fast_calls = 0;
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    // 500, not 429: an overload would narrow the window (see below).
    if (rq.url.find("/fast/") != std::string::npos && ++fast_calls == 1) {
      return Reply(r, 500, "{}");
    }
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  f.http.latency = [](const HttpRequest& rq) {
    return rq.url.find("/slow/") != std::string::npos ? 5s : Clock::duration(0);
  };
  KpClient kp = f.Client();
  std::vector<KpCall> calls;
  calls.push_back(KpClient::MakeUnwrapCall("slow", "c"));
  calls.push_back(KpClient::MakeUnwrapCall("fast", "c"));
  std::vector<std::pair<KpCall*, Clock::time_point>> done;
  kp.Run(Pointers(calls), [&](KpCall& c) { done.emplace_back(&c, f.clock.Now()); });
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].first, &calls[1]);
  EXPECT_EQ(calls[1].attempts, 2);
  EXPECT_LT(done[0].second - f.http.sent()[0].at, 1s);
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

// An overloaded service: the whole host holds back, not each request alone,
// and comes back with fewer requests in flight.
TEST(KpClientTest, AnOverloadHoldsTheWholeHostThenItComesBackOneAtATime) {
  int unwraps = 0;
  Fixture f([&](const HttpRequest& rq, HttpResponse* r) {
    if (IsIam(rq)) return IssueToken(rq, r);
    // The first burst: one of eight is turned away.
    if (++unwraps == 3) {
      r->retry_after_s = 1;
      return Reply(r, 429, "{}");
    }
    Reply(r, 200, UnwrapOk("QUJD"));
  });
  f.http.latency = [](const HttpRequest& rq) { return IsIam(rq) ? 0ms : 100ms; };
  RetryPolicy no_jitter;  // the schedule exactly, without random spread
  no_jitter.jitter = false;
  KpClient kp = f.Client(no_jitter, 30s);
  kp.set_max_parallel(8);
  std::vector<KpCall> calls;  // eight in flight, four waiting for room
  for (int i = 0; i < 12; ++i) {
    calls.push_back(KpClient::MakeUnwrapCall("k" + std::to_string(i), "c"));
  }
  kp.Run(Pointers(calls));
  for (const KpCall& c : calls) EXPECT_EQ(c.result, 0) << c.error;
  const Clock::time_point t429 = f.http.sent()[3].at + 100ms;  // when the 429 arrived
  // Nothing went out between the 429 and the end of the hold: neither its
  // retry nor the four that were waiting for room.
  EXPECT_EQ(f.http.sent().size(), 1u + 12u + 1u);
  for (const auto& s : f.http.sent()) {
    if (s.at > t429) {
      EXPECT_GE(s.at, t429 + 1s) << s.url;
    }
  }
  // After the hold (Retry-After 1, exactly: no jitter) one request at a
  // time, one more per round of successes: of the five sent after it (the
  // retry and the four waiting), the first went alone, then two together,
  // then two.
  std::vector<Clock::time_point> after;
  for (const auto& s : f.http.sent()) {
    if (s.at > t429) after.push_back(s.at);
  }
  ASSERT_EQ(after.size(), 5u);
  EXPECT_EQ(after[0], t429 + 1s);
  EXPECT_EQ(std::count(after.begin(), after.end(), after[0]), 1);
  EXPECT_EQ(std::count(after.begin(), after.end(), after[1]), 2);
  EXPECT_EQ(std::count(after.begin(), after.end(), after[3]), 2);
}

}  // namespace
}  // namespace hpcs
