#include "kp/kp_answers.h"

#include <algorithm>
#include <cerrno>
#include <cmath>

#include "base/encoding.h"
#include "base/error.h"
#include "base/json.h"
#include "base/strutil.h"

namespace hpcs {
namespace {

// The answer as JSON, or a refusal naming only its status, length and type.
Json ParseAnswer(std::string_view op, const KmsAnswer& a, std::string* err) {
  Json j = JsonParse(a.body);
  if (!j || !cJSON_IsObject(j.get())) {
    Fail(err, -EPROTO, DescribeUnusable(op, a, j ? "not a JSON object" : "not JSON"));
    return nullptr;
  }
  return j;
}

// keyVersion.id of a wrap or unwrap answer; "" without one.
std::string KeyVersionOf(const cJSON* answer) {
  const cJSON* kv = JsonObject(answer, "keyVersion");
  return std::string(kv ? JsonString(kv, "id").value_or("") : "");
}

}  // namespace

std::string DescribeUnusable(std::string_view op, const KmsAnswer& a, std::string_view what) {
  std::string type = a.content_type.empty() ? "" : " of " + Printable(a.content_type, 80);
  return std::string(op) + (op.empty() ? "" : ": ") + "unusable answer (HTTP " +
         std::to_string(a.status) + ", " + std::to_string(a.body.size()) + " bytes" + type +
         "): " + std::string(what);
}

std::string DescribeHttpError(long status, std::string_view body) {
  std::string msg = "HTTP " + std::to_string(status);
  Json j = JsonParse(body);
  if (!j || !cJSON_IsObject(j.get())) {
    std::string_view t = Trim(body);
    if (!t.empty()) msg += ": unexpected non-JSON body: " + Printable(t, 80);
    return msg;
  }
  // IAM: {"errorCode":"BXNIM0415E","errorMessage":"..."}
  if (auto code = JsonString(j.get(), "errorCode")) msg += " " + Printable(*code, 64);
  if (auto m = JsonString(j.get(), "errorMessage")) return msg + ": " + Printable(*m, 300);
  // KMS: {"resources":[{"errorMsg":"...","reasons":[{"code":"..."}]}]}
  const cJSON* res = JsonArray(j.get(), "resources");
  const cJSON* first = res ? cJSON_GetArrayItem(res, 0) : nullptr;
  if (first) {
    const cJSON* reasons = JsonArray(first, "reasons");
    const cJSON* r0 = reasons ? cJSON_GetArrayItem(reasons, 0) : nullptr;
    if (auto code = r0 ? JsonString(r0, "code") : std::nullopt) msg += " " + Printable(*code, 64);
    if (auto m = JsonString(first, "errorMsg")) msg += ": " + Printable(*m, 300);
    if (auto m = r0 ? JsonString(r0, "message") : std::nullopt)
      msg += " (" + Printable(*m, 300) + ")";
  } else if (const cJSON* errors = JsonArray(j.get(), "errors")) {
    // The VPC metadata service: {"errors":[{"code":"...","message":"..."}],"trace":"..."}
    const cJSON* e0 = cJSON_GetArrayItem(errors, 0);
    if (auto code = e0 ? JsonString(e0, "code") : std::nullopt) msg += " " + Printable(*code, 64);
    if (auto m = e0 ? JsonString(e0, "message") : std::nullopt) msg += ": " + Printable(*m, 300);
    if (auto t = JsonString(j.get(), "trace")) msg += " (trace " + Printable(*t, 64) + ")";
  } else if (auto m = JsonString(j.get(), "message")) {
    msg += ": " + Printable(*m, 300);
  }
  return msg;
}

int ParseIamToken(const KmsAnswer& a, IamToken* out, std::string* err) {
  Json j = ParseAnswer("", a, err);
  if (!j) return -EPROTO;
  auto token = JsonString(j.get(), "access_token");
  if (!token || token->empty()) {
    return Fail(err, -EPROTO, DescribeUnusable("", a, "no access_token"));
  }
  IamToken t;
  t.access_token = Secret::FromString(*token);
  // A server may say anything here (1e300, -1, NaN): the lifetime is kept
  // within bounds that make sense for a token before it is used as a time.
  if (auto secs = JsonNumber(j.get(), "expires_in")) {
    double s = std::isnan(*secs) ? 0 : *secs;
    s = std::clamp(s, static_cast<double>(kMinTokenLifetime.count()),
                   static_cast<double>(kMaxTokenLifetime.count()));
    t.lifetime = std::chrono::seconds(static_cast<long long>(s));
  }
  *out = std::move(t);
  return 0;
}

int ParseKeyList(const KmsAnswer& a, std::vector<KeyInfo>* out, std::string* err) {
  Json j = ParseAnswer("list", a, err);
  if (!j) return -EPROTO;
  const cJSON* res = JsonArray(j.get(), "resources");
  if (!res) {
    if (JsonObject(j.get(), "metadata")) {  // an empty collection
      out->clear();
      return 0;
    }
    return Fail(err, -EPROTO, DescribeUnusable("list", a, "no resources"));
  }
  std::vector<KeyInfo> keys;
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, res) {
    keys.push_back({std::string(JsonString(item, "id").value_or("")),
                    std::string(JsonString(item, "name").value_or(""))});
  }
  *out = std::move(keys);
  return 0;
}

int ParseCreatedKey(const KmsAnswer& a, std::string* id, std::string* err) {
  Json j = ParseAnswer("create", a, err);
  if (!j) return -EPROTO;
  const cJSON* rs = JsonArray(j.get(), "resources");
  auto new_id = rs ? JsonString(cJSON_GetArrayItem(rs, 0), "id") : std::nullopt;
  if (!new_id || new_id->empty()) {
    return Fail(err, -EPROTO, DescribeUnusable("create", a, "no resources[0].id"));
  }
  *id = std::string(*new_id);
  return 0;
}

int ParseKeyMetadata(const KmsAnswer& a, std::string* json, std::string* err) {
  Json j = ParseAnswer("get", a, err);
  if (!j) return -EPROTO;
  const cJSON* rs = JsonArray(j.get(), "resources");
  cJSON* key = rs ? cJSON_GetArrayItem(rs, 0) : nullptr;
  if (!cJSON_IsObject(key)) {
    return Fail(err, -EPROTO, DescribeUnusable("get", a, "no resources[0]"));
  }
  // Metadata only: a standard key's material stays out of the output, every
  // copy of it (a JSON object may repeat a name).
  while (cJSON_GetObjectItemCaseSensitive(key, "payload")) {
    cJSON_DeleteItemFromObjectCaseSensitive(key, "payload");
  }
  char* text = cJSON_Print(key);
  *json = text ? text : "{}";
  cJSON_free(text);
  return 0;
}

int ParseWrapped(const KmsAnswer& a, std::string* ciphertext, std::string* err,
                 std::string* key_version) {
  Json j = ParseAnswer("wrap", a, err);
  if (!j) return -EPROTO;
  auto ct = JsonString(j.get(), "ciphertext");
  if (!ct || ct->empty()) return Fail(err, -EPROTO, DescribeUnusable("wrap", a, "no ciphertext"));
  *ciphertext = std::string(*ct);
  if (key_version) *key_version = KeyVersionOf(j.get());
  return 0;
}

int ParseUnwrapped(const KmsAnswer& a, Secret* plaintext, std::string* err,
                   std::string* key_version) {
  Json j = ParseAnswer("unwrap", a, err);
  if (!j) return -EPROTO;
  auto pt = JsonString(j.get(), "plaintext");
  if (!pt) return Fail(err, -EPROTO, DescribeUnusable("unwrap", a, "no plaintext"));
  if (Base64Decode(*pt, plaintext) < 0) {
    return Fail(err, -EPROTO, DescribeUnusable("unwrap", a, "the plaintext is not base64"));
  }
  if (key_version) *key_version = KeyVersionOf(j.get());
  return 0;
}

}  // namespace hpcs
