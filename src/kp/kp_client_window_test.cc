// KpClient's use of its connections: the sliding window of requests in
// flight, the host's hold after an overload, and the KMS connection opened
// while the IAM token is on its way.
#include "kp/kp_client.h"

#include <gtest/gtest.h>

#include <functional>

#include "base/strutil.h"
#include "kp/kp_client_testing.h"
#include "testing/test_doubles.h"

namespace hpcs {
namespace {

using namespace kp_testing;

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
