#include "core/hpcs_token.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <set>

#include "base/error.h"
#include "base/json.h"
#include "base/strutil.h"
#include "core/luks2_metadata.h"

namespace hpcs {
namespace {

// Key Protect's limit on a ciphertext it hands out (kp-api.md: plaintext up
// to 4096 base64 characters; its ciphertext of a 44-byte passphrase is ~350).
constexpr size_t kMaxCiphertext = 4096;
constexpr size_t kMaxField = 255;

constexpr const char* kMembers[] = {"type", "keyslots",    "version",  "kms",        "instance",
                                    "crk",  "key_version", "bound_to", "ciphertext", "name"};

int Refuse(std::string* err, const std::string& what) {
  return Fail(err, -EINVAL, "hpcs token: " + what);
}

// Key Protect's ciphertext is base64, but opaque to us (kp-api.md): printable
// ASCII without white space is all that is asked of it.
bool IsCiphertextChar(char c) { return c > ' ' && c < 0x7f; }

bool HasControl(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// A string member: present (unless optional), a string, no control
// characters, at most max bytes, and not empty unless may_be_empty.
int TakeString(const cJSON* obj, const char* name, size_t max, bool optional, bool may_be_empty,
               std::string* out, std::string* err) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (!v) return optional ? 0 : Refuse(err, std::string("member '") + name + "' is missing");
  if (!cJSON_IsString(v) || !v->valuestring) {
    return Refuse(err, std::string("member '") + name + "' is not a string");
  }
  std::string_view s = v->valuestring;
  if (s.empty() && !may_be_empty) return Refuse(err, std::string("member '") + name + "' is empty");
  if (s.size() > max) {
    return Refuse(err, std::string("member '") + name + "' is longer than " + std::to_string(max) +
                           " characters");
  }
  if (HasControl(s)) {
    return Refuse(err, std::string("member '") + name + "' holds control characters");
  }
  *out = std::string(s);
  return 0;
}

int TakeKeyslots(const cJSON* obj, std::vector<int>* out, std::string* err) {
  const cJSON* ks = cJSON_GetObjectItemCaseSensitive(obj, "keyslots");
  if (!ks) return Refuse(err, "member 'keyslots' is missing");
  if (!cJSON_IsArray(ks)) return Refuse(err, "member 'keyslots' is not an array");
  std::vector<int> slots;
  const cJSON* s = nullptr;
  cJSON_ArrayForEach(s, ks) {
    int id = 0;
    if (!cJSON_IsString(s) || !s->valuestring || !ParseLuks2Id(s->valuestring, &id)) {
      return Refuse(err,
                    "member 'keyslots' must list key slots as strings of decimal digits "
                    "(\"1\"), 0 to 1024");
    }
    for (int seen : slots) {
      if (seen == id)
        return Refuse(err, "member 'keyslots' names key slot " + std::to_string(id) + " twice");
    }
    slots.push_back(id);
  }
  if (slots.empty()) return Refuse(err, "member 'keyslots' names no key slot");
  *out = std::move(slots);
  return 0;
}

int TakeVersion(const cJSON* obj, int* out, std::string* err) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, "version");
  if (!v) return Refuse(err, "member 'version' is missing");
  double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
  if (!std::isfinite(d) || d != std::floor(d) || d < 1) {
    return Refuse(err, "member 'version' is not a whole number from 1");
  }
  if (d > kHpcsTokenVersion) {
    return Refuse(err, "version " + std::to_string(static_cast<long long>(std::min(d, 1e15))) +
                           " is newer than this hpcs-for-luks reads (" +
                           std::to_string(kHpcsTokenVersion) + "): update it");
  }
  *out = static_cast<int>(d);
  return 0;
}

}  // namespace

int ParseHpcsToken(std::string_view json, HpcsToken* out, std::string* err) {
  JsonInit();
  const char* end = nullptr;
  Json j(cJSON_ParseWithLengthOpts(json.data(), json.size(), &end, false));
  bool trailing = j && !Trim(json.substr(end - json.data())).empty();
  if (!j || trailing || !cJSON_IsObject(j.get())) return Refuse(err, "not a JSON object");
  const cJSON* obj = j.get();
  std::set<std::string> seen;
  const cJSON* m = nullptr;
  cJSON_ArrayForEach(m, obj) {
    std::string name = m->string ? m->string : "";
    bool known = false;
    for (const char* k : kMembers) known |= name == k;
    if (!known) return Refuse(err, "unknown member '" + Printable(name, 64) + "'");
    if (!seen.insert(name).second) return Refuse(err, "member '" + name + "' appears twice");
  }
  HpcsToken t;
  std::string type;
  if (int r = TakeString(obj, "type", kMaxField, false, false, &type, err); r < 0) return r;
  if (type != kHpcsTokenType) {
    return Refuse(err, "member 'type' is '" + Printable(type, 64) + "', not 'hpcs'");
  }
  if (int r = TakeKeyslots(obj, &t.keyslots, err); r < 0) return r;
  if (int r = TakeVersion(obj, &t.version, err); r < 0) return r;
  if (int r = TakeString(obj, "kms", kMaxField, false, false, &t.kms, err); r < 0) return r;
  if (!StartsWith(t.kms, "https://")) return Refuse(err, "member 'kms' is not an https:// URL");
  if (int r = TakeString(obj, "instance", kMaxField, false, false, &t.instance, err); r < 0) {
    return r;
  }
  if (int r = TakeString(obj, "crk", kMaxField, false, false, &t.crk, err); r < 0) return r;
  if (int r = TakeString(obj, "key_version", kMaxField, false, true, &t.key_version, err); r < 0) {
    return r;
  }
  if (int r = TakeString(obj, "bound_to", kMaxField, false, false, &t.bound_to, err); r < 0) {
    return r;
  }
  if (t.bound_to != kBoundToLuksUuid) {
    return Refuse(err, "member 'bound_to' is '" + Printable(t.bound_to, 64) + "', not '" +
                           std::string(kBoundToLuksUuid) + "'");
  }
  if (int r = TakeString(obj, "ciphertext", kMaxCiphertext, false, false, &t.ciphertext, err);
      r < 0) {
    return r;
  }
  for (char c : t.ciphertext) {
    if (!IsCiphertextChar(c)) {
      return Refuse(err, "member 'ciphertext' holds other characters than printable ASCII");
    }
  }
  if (int r = TakeString(obj, "name", kMaxField, true, true, &t.name, err); r < 0) return r;
  *out = std::move(t);
  return 0;
}

std::string FormatHpcsToken(const HpcsToken& t) {
  Json j(cJSON_CreateObject());
  cJSON_AddStringToObject(j.get(), "type", std::string(kHpcsTokenType).c_str());
  cJSON* slots = cJSON_AddArrayToObject(j.get(), "keyslots");
  for (int id : t.keyslots) {
    cJSON_AddItemToArray(slots, cJSON_CreateString(std::to_string(id).c_str()));
  }
  cJSON_AddNumberToObject(j.get(), "version", t.version);
  cJSON_AddStringToObject(j.get(), "kms", t.kms.c_str());
  cJSON_AddStringToObject(j.get(), "instance", t.instance.c_str());
  cJSON_AddStringToObject(j.get(), "crk", t.crk.c_str());
  cJSON_AddStringToObject(j.get(), "key_version", t.key_version.c_str());
  cJSON_AddStringToObject(j.get(), "bound_to", t.bound_to.c_str());
  cJSON_AddStringToObject(j.get(), "ciphertext", t.ciphertext.c_str());
  if (!t.name.empty()) cJSON_AddStringToObject(j.get(), "name", t.name.c_str());
  return std::string(JsonPrint(j.get()).view());
}

int HpcsTokenAad(std::string_view luks_uuid, std::vector<std::string>* aad, std::string* err) {
  bool ok = luks_uuid.size() == 36;
  for (size_t i = 0; ok && i < luks_uuid.size(); ++i) {
    char c = luks_uuid[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    ok = dash ? c == '-'
              : (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }
  if (!ok) {
    return Fail(err, -EINVAL,
                "'" + Printable(luks_uuid, 64) +
                    "' is not a LUKS UUID (36 characters, hex digits and dashes, as "
                    "cryptsetup luksUUID prints it)");
  }
  *aad = {std::string(kBoundToLuksUuid) + ":" + ToLower(luks_uuid)};
  return 0;
}

std::vector<std::string> DescribeHpcsToken(const HpcsToken& t) {
  std::vector<std::string> lines;
  auto line = [&](std::string_view name, std::string_view value) {
    lines.push_back("\t" + std::string(name) + ": " + std::string(value));
  };
  line("version", std::to_string(t.version));
  if (!t.name.empty()) line("name", t.name);
  line("kms", t.kms);
  line("instance", t.instance);
  line("crk", t.crk);
  line("key_version", t.key_version.empty() ? "(unknown)" : t.key_version);
  line("bound_to", t.bound_to);
  std::string ct = t.ciphertext.substr(0, 16);
  if (t.ciphertext.size() > 16) ct += "...";
  line("ciphertext", ct + " (" + std::to_string(t.ciphertext.size()) + " chars)");
  return lines;
}

}  // namespace hpcs
