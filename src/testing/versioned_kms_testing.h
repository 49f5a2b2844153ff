// A Key Protect with key versions behind test_doubles.h's ScriptedTransport,
// for the tests of rotation.cc and rewrap.cc: wrap, unwrap (with the newer
// wrapping after a rotation) and rewrap, as kp-api.md describes them. A
// ciphertext here is "<crk>.v<N>.<base64 of the plaintext>", followed by
// ".<base64 of the AAD list as compact JSON>" when the wrap had AAD: readable
// in a test, opaque to the code under test. An unwrap or rewrap whose AAD is
// not the wrap's is a 422, as on the service.
#ifndef HPCS_TESTING_VERSIONED_KMS_TESTING_H_
#define HPCS_TESTING_VERSIONED_KMS_TESTING_H_

#include <map>
#include <string>
#include <vector>

#include "base/encoding.h"
#include "base/json.h"
#include "base/strutil.h"
#include "kp/kp_client.h"
#include "testing/test_doubles.h"

namespace hpcs {

class VersionedKms {
 public:
  // The ciphertext `crk` makes of `plain` with its current version.
  // aad: the AAD list as compact JSON (["a","b"]), "" for none.
  std::string Wrap(const std::string& crk, std::string_view plain, std::string_view aad = "") {
    return crk + ".v" + std::to_string(Version(crk)) + "." + B64(plain) + AadSuffix(aad);
  }
  void Rotate(const std::string& crk) { versions_[crk] = Version(crk) + 1; }
  int Version(const std::string& crk) { return versions_.count(crk) ? versions_[crk] : 1; }

  // Unwraps from number `spoil_from` on (0 = the first) answer other bytes.
  int spoil_from = -1;
  // Keys (by id) that are gone: every call on them is a 404.
  std::vector<std::string> deleted;
  // "unwrap crk", "rewrap crk", "wrap crk", in order; and the AAD each
  // call sent (compact JSON, "" for none).
  std::vector<std::string> calls;
  std::vector<std::string> aads;

  void Answer(const HttpRequest& rq, HttpResponse* r) {
    if (rq.url.find("/identity/token") != std::string::npos) {
      return Reply(r, 200, R"({"access_token":"t","expires_in":3600})");
    }
    // https://kms.test/api/v2/keys/<crk>/actions/<op>
    std::string path = rq.url.substr(rq.url.find("/api/v2/keys/") + 13);
    std::string crk = path.substr(0, path.find('/'));
    std::string op = path.substr(path.rfind('/') + 1);
    calls.push_back(op + " " + crk);
    Json in = JsonParse(rq.body.view());
    const cJSON* aad_list = in ? JsonArray(in.get(), "aad") : nullptr;
    std::string aad = aad_list ? std::string(JsonPrint(aad_list).view()) : "";
    aads.push_back(aad);
    if (std::count(deleted.begin(), deleted.end(), crk)) {
      return Reply(
          r, 404,
          R"({"resources":[{"errorMsg":"Not Found","reasons":[{"code":"KEY_NOT_FOUND_ERR"}]}]})");
    }
    std::string current = "v" + std::to_string(Version(crk));
    if (op == "wrap") {
      Secret plain;
      Base64Decode(JsonString(in.get(), "plaintext").value_or(""), &plain);
      return Reply(r, 200, Object({{"ciphertext", Wrap(crk, plain.view(), aad)}}, current, ""));
    }
    std::string ct(Trim(JsonString(in.get(), "ciphertext").value_or("")));
    size_t dot1 = ct.find('.'), dot2 = ct.find('.', dot1 + 1);
    size_t dot3 = dot2 == std::string::npos ? dot2 : ct.find('.', dot2 + 1);
    std::string suffix = dot3 == std::string::npos ? "" : ct.substr(dot3);
    if (dot1 == std::string::npos || dot2 == std::string::npos || ct.substr(0, dot1) != crk ||
        suffix != AadSuffix(aad)) {
      return Reply(
          r, 422,
          R"({"resources":[{"errorMsg":"Unprocessable Entity","reasons":[{"code":"UNPROCESSABLE_CIPHERTEXT_ERR"}]}]})");
    }
    std::string version = ct.substr(dot1 + 1, dot2 - dot1 - 1);
    std::string b64 = ct.substr(dot2 + 1, dot3 == std::string::npos ? dot3 : dot3 - dot2 - 1);
    Secret plain;
    Base64Decode(b64, &plain);
    std::string newer = crk + "." + current + "." + b64 + suffix;
    if (op == "rewrap") {
      return Reply(r, 200, Object({{"ciphertext", newer}}, version, current));
    }
    if (spoil_from >= 0 && unwraps_++ >= spoil_from) {
      std::string other(plain.view());
      other[0] ^= 1;
      b64 = B64(other);
    }
    std::vector<std::pair<std::string, std::string>> fields = {{"plaintext", b64}};
    if (version != current) fields.push_back({"ciphertext", newer});
    return Reply(r, 200, Object(fields, version, version != current ? current : ""));
  }

 private:
  static std::string B64(std::string_view s) {
    return Base64Encode(std::span(reinterpret_cast<const std::byte*>(s.data()), s.size()));
  }
  static std::string AadSuffix(std::string_view aad) { return aad.empty() ? "" : "." + B64(aad); }
  static void Reply(HttpResponse* r, long status, std::string body) {
    r->status = status;
    r->body = Secret::FromString(body);
  }
  static std::string Object(const std::vector<std::pair<std::string, std::string>>& fields,
                            const std::string& version, const std::string& rewrapped) {
    std::string s = "{";
    for (const auto& [k, v] : fields) s += "\"" + k + "\":\"" + v + "\",";
    s += R"("keyVersion":{"id":")" + version + "\"}";
    if (!rewrapped.empty()) s += R"(,"rewrappedKeyVersion":{"id":")" + rewrapped + "\"}";
    return s + "}";
  }

  std::map<std::string, int> versions_;
  int unwraps_ = 0;
};

// A KpClient on a ScriptedTransport answered by a VersionedKms.
struct VersionedKmsFixture {
  FakeClock clock;
  VersionedKms kms;
  ScriptedTransport http{&clock,
                         [this](const HttpRequest& rq, HttpResponse* r) { kms.Answer(rq, r); }};
  KpClient kp{{"https://kms.test", "https://iam.test", "inst"},
              Secret::FromString("k"),
              &http,
              RetryPolicy{.max_retries = 0},
              clock.Now() + std::chrono::seconds(30),
              &clock};
};

}  // namespace hpcs

#endif  // HPCS_TESTING_VERSIONED_KMS_TESTING_H_
