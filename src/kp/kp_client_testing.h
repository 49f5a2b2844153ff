// What the KpClient tests share: a scripted IAM and KMS on a fake clock.
#ifndef HPCS_KP_KP_CLIENT_TESTING_H_
#define HPCS_KP_KP_CLIENT_TESTING_H_

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "kp/kp_client.h"
#include "testing/test_doubles.h"

namespace hpcs::kp_testing {

using namespace std::chrono_literals;

inline constexpr char kApiKey[] = "api-key-Zq7vR2mX9pL4";
inline constexpr char kToken[] = "tok.en-Wm3kD8sQ.value";

inline void Reply(HttpResponse* r, long status, std::string_view body) {
  r->status = status;
  r->body = Secret::FromString(body);
}

inline bool IsIamUrl(const std::string& url) {
  return url.find("/identity/token") != std::string::npos;
}
inline bool IsIam(const HttpRequest& rq) { return IsIamUrl(rq.url); }

inline void IssueToken(const HttpRequest& rq, HttpResponse* r) {
  EXPECT_NE(rq.body.view().find(std::string("apikey=") + kApiKey), std::string::npos);
  Reply(r, 200, std::string(R"({"access_token":")") + kToken + R"(","expires_in":3600})");
}

inline std::string UnwrapOk(std::string_view b64) {
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

inline std::vector<KpCall*> Pointers(std::vector<KpCall>& calls) {
  std::vector<KpCall*> p;
  for (auto& c : calls) p.push_back(&c);
  return p;
}

}  // namespace hpcs::kp_testing

#endif  // HPCS_KP_KP_CLIENT_TESTING_H_
