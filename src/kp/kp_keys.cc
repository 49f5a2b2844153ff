#include "kp/kp_keys.h"

#include <cerrno>

#include "base/json.h"
#include "base/strutil.h"
#include "kp/kp_answers.h"

namespace hpcs {

namespace {

constexpr size_t kMaxCiphertext = 64 * 1024;

// A 2xx answer we cannot use, by its length and type: never its body, which
// may hold a secret (kp_answers.h).
std::string Unexpected(std::string_view op, const KpCall& call, std::string_view what) {
  return DescribeUnusable(op, KmsAnswer{call.status, call.response_type, call.response.view()},
                          what);
}

// obj.<name>.id, or "" when absent.
std::string VersionId(const cJSON* obj, const char* name) {
  const cJSON* v = JsonObject(obj, name);
  auto id = v ? JsonString(v, "id") : std::nullopt;
  return id ? std::string(*id) : std::string();
}

}  // namespace

std::string KeyStateName(int state) {
  switch (state) {
    case kKeyPreActive:
      return "pre-active";
    case kKeyActive:
      return "active";
    case kKeySuspended:
      return "suspended (disabled)";
    case kKeyDeactivated:
      return "deactivated (expired)";
    case kKeyDestroyed:
      return "destroyed (deleted)";
  }
  return "state " + std::to_string(state);
}

KpCall MakeKeyMetadataCall(std::string_view id) {
  KpCall call;
  call.path = "/api/v2/keys/" + UrlEncode(id) + "/metadata";
  return call;
}

int ParseKeyMetadata(const KpCall& call, KeyMetadata* out, std::string* err) {
  if (call.result < 0) {
    if (err) *err = call.error;
    return call.result;
  }
  Json j = JsonParse(call.response.view());
  const cJSON* rs = j ? JsonArray(j.get(), "resources") : nullptr;
  const cJSON* key = rs ? cJSON_GetArrayItem(rs, 0) : nullptr;
  auto state = key ? JsonNumber(key, "state") : std::nullopt;
  if (!key || !state) {
    if (err) *err = Unexpected("key metadata", call, "no resources[0].state");
    return -EPROTO;
  }
  KeyMetadata m;
  m.id = std::string(JsonString(key, "id").value_or(""));
  m.name = std::string(JsonString(key, "name").value_or(""));
  m.state = static_cast<int>(*state);
  m.deleted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(key, "deleted"));
  m.extractable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(key, "extractable"));
  m.key_version = VersionId(key, "keyVersion");
  if (const cJSON* v = JsonObject(key, "keyVersion")) {
    m.key_version_created = std::string(JsonString(v, "creationDate").value_or(""));
  }
  m.last_rotated = std::string(JsonString(key, "lastRotateDate").value_or(""));
  *out = std::move(m);
  return 0;
}

int ParseUnwrapDetails(const KpCall& call, UnwrapDetails* out, std::string* err) {
  UnwrapDetails d;
  if (int r = KpClient::ParseUnwrap(call, &d.plaintext, err); r < 0) return r;
  Json j = JsonParse(call.response.view());
  d.key_version = VersionId(j.get(), "keyVersion");
  if (auto ct = JsonString(j.get(), "ciphertext"); ct && !ct->empty()) {
    d.rewrapped_ciphertext = std::string(*ct);
    d.rewrapped_key_version = VersionId(j.get(), "rewrappedKeyVersion");
  }
  *out = std::move(d);
  return 0;
}

KpCall MakeRewrapCall(std::string_view crk, std::string_view ciphertext) {
  // The body of an unwrap ({"ciphertext": ...}) to another action.
  KpCall call = KpClient::MakeUnwrapCall(crk, ciphertext);
  call.path = "/api/v2/keys/" + UrlEncode(crk) + "/actions/rewrap";
  call.content_type = "application/vnd.ibm.kms.key_action+json";
  return call;
}

int ParseRewrap(const KpCall& call, RewrapResult* out, std::string* err) {
  if (call.result < 0) {
    if (err) *err = call.error;
    return call.result;
  }
  Json j = JsonParse(call.response.view());
  auto ct = j ? JsonString(j.get(), "ciphertext") : std::nullopt;
  if (!ct || !PlausibleCiphertext(*ct)) {
    if (err) *err = Unexpected("rewrap", call, "no usable ciphertext");
    return -EPROTO;
  }
  RewrapResult r;
  r.ciphertext = std::string(*ct);
  r.key_version = VersionId(j.get(), "keyVersion");
  r.rewrapped_key_version = VersionId(j.get(), "rewrappedKeyVersion");
  *out = std::move(r);
  return 0;
}

int RunKpCall(KpClient& kp, KpCall* call, std::string* err) {
  KpCall* calls[] = {call};
  kp.Run(calls);
  if (call->result < 0 && err) *err = call->error;
  return call->result;
}

bool FailedForToken(const KpCall& call) {
  return call.result < 0 && call.status == 0 &&
         (StartsWith(call.error, "cannot get an IAM token") ||
          StartsWith(call.error, "cannot get an instance identity token"));
}

bool PlausibleCiphertext(std::string_view ct) {
  if (ct.empty() || ct.size() > kMaxCiphertext) return false;
  for (char c : ct) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

}  // namespace hpcs
