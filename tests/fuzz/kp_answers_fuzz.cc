// Every answer of the KMS and IAM that the client parses (kp_answers.cc):
// any bytes as the body of an IAM token answer, a list page, create, get,
// wrap, unwrap, or an error. The first byte picks which. Properties: an
// unusable 2xx answer is described by status, length and type only (never a
// byte of its body); an error description is one printable line; a token's
// lifetime is within bounds, and the client that uses it (over a scripted
// transport on a fake clock) asks for one token per lifetime.
#include <set>
#include <string>
#include <vector>

#include "base/secret.h"
#include "fuzz_check.h"
#include "kp/kp_answers.h"
#include "kp/kp_client.h"
#include "testing/test_doubles.h"

namespace {

using namespace hpcs;

enum Mode { kIam, kList, kCreate, kGet, kWrap, kUnwrap, kError, kClient, kModes };

constexpr std::string_view kType = "application/json";

// err must be exactly DescribeUnusable(op, a, one of `whats`).
void CheckUnusable(std::string_view op, const KmsAnswer& a, const std::string& err,
                   std::set<std::string_view> whats) {
  std::string prefix = DescribeUnusable(op, a, "");
  FUZZ_CHECK(err.compare(0, prefix.size(), prefix) == 0, err.c_str());
  FUZZ_CHECK(whats.count(std::string_view(err).substr(prefix.size())) == 1, err.c_str());
}

const std::set<std::string_view> kNotJson = {"not JSON", "not a JSON object"};

std::set<std::string_view> With(std::string_view what) {
  std::set<std::string_view> s = kNotJson;
  s.insert(what);
  return s;
}

void ClientUsesTheLifetime(std::string_view iam_body) {
  FakeClock clock;
  ScriptedTransport http(&clock, [&](const HttpRequest& rq, HttpResponse* r) {
    r->status = 200;
    bool iam = rq.url.find("/identity/token") != std::string::npos;
    r->body = Secret::FromString(iam ? iam_body : R"({"plaintext":"AP8K"})");
  });
  KpClient kp({"https://kms.test", "https://iam.test", "instance"}, Secret::FromString("api-key"),
              &http, RetryPolicy{}, clock.Now() + std::chrono::hours(24), &clock);
  Secret pt;
  std::string err;
  if (kp.Unwrap("crk", "ct", &pt, &err) < 0) return;  // no usable token
  clock.Advance(std::chrono::seconds(47));            // within 80% of the shortest lifetime
  FUZZ_CHECK(kp.Unwrap("crk", "ct", &pt, &err) == 0, err.c_str());
  FUZZ_CHECK(kp.token_requests() == 1, "one token while it is fresh");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
  if (size < 1) return 0;
  const Mode mode = static_cast<Mode>(data[0] % kModes);
  const std::string_view body = fuzz::AsText(data + 1, size - 1);
  const KmsAnswer a{200, kType, body};
  std::string err, s;
  switch (mode) {
    case kIam: {
      IamToken t;
      if (ParseIamToken(a, &t, &err) < 0) {
        CheckUnusable("", a, err, With("no access_token"));
      } else {
        FUZZ_CHECK(!t.access_token.empty(), "a token");
        FUZZ_CHECK(t.lifetime >= kMinTokenLifetime && t.lifetime <= kMaxTokenLifetime,
                   "the lifetime within bounds");
      }
      break;
    }
    case kList: {
      std::vector<KeyInfo> keys;
      if (ParseKeyList(a, &keys, &err) < 0) CheckUnusable("list", a, err, With("no resources"));
      break;
    }
    case kCreate:
      if (ParseCreatedKey(a, &s, &err) < 0) {
        CheckUnusable("create", a, err, With("no resources[0].id"));
      } else {
        FUZZ_CHECK(!s.empty(), "an id");
      }
      break;
    case kGet:
      if (ParseKeyMetadata(a, &s, &err) < 0) {
        CheckUnusable("get", a, err, With("no resources[0]"));
      } else {
        FUZZ_CHECK(s.find("\n\t\"payload\":") == std::string::npos, "no key material");
      }
      break;
    case kWrap:
      if (ParseWrapped(a, &s, &err) < 0) CheckUnusable("wrap", a, err, With("no ciphertext"));
      break;
    case kUnwrap: {
      Secret pt;
      if (ParseUnwrapped(a, &pt, &err) < 0) {
        std::set<std::string_view> whats = With("no plaintext");
        whats.insert("the plaintext is not base64");
        CheckUnusable("unwrap", a, err, whats);
      }
      break;
    }
    case kError: {
      std::string m = DescribeHttpError(400 + data[0] % 200, body);
      FUZZ_CHECK(m.find('\n') == std::string::npos, "one line");
      FUZZ_CHECK(m.size() < 1000, "bounded");
      break;
    }
    case kClient:
      ClientUsesTheLifetime(body);
      break;
    case kModes:
      break;
  }
  return 0;
}
