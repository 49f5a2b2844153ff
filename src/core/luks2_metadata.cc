#include "core/luks2_metadata.h"

#include <algorithm>
#include <cerrno>

#include "base/json.h"
#include "base/strutil.h"

namespace hpcs {

namespace {

bool ParseId(std::string_view s, int* out) {
  unsigned long long n = 0;
  if (!ParseUint(s, &n) || n > 1024) return false;
  *out = static_cast<int>(n);
  return true;
}

}  // namespace

const LuksKeyslot* LuksHeader::Keyslot(int id) const {
  for (const auto& k : keyslots) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

std::vector<const LuksToken*> LuksHeader::KeyringTokens(std::string_view desc) const {
  std::vector<const LuksToken*> out;
  for (const auto& t : tokens) {
    if (t.type == "luks2-keyring" && t.key_description == desc) out.push_back(&t);
  }
  return out;
}

int ParseLuks2Metadata(std::string_view json, LuksHeader* out, std::string* err) {
  Json j = JsonParse(json);
  const cJSON* slots = j ? JsonObject(j.get(), "keyslots") : nullptr;
  if (!slots) {
    if (err) *err = "not LUKS2 metadata: " + Printable(Trim(json), 80);
    return -EPROTO;
  }
  LuksHeader h;
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, slots) {
    LuksKeyslot k;
    if (!item->string || !ParseId(item->string, &k.id)) continue;
    if (const cJSON* kdf = JsonObject(item, "kdf")) {
      k.kdf = std::string(JsonString(kdf, "type").value_or(""));
      k.memory_kib = static_cast<uint64_t>(JsonNumber(kdf, "memory").value_or(0));
    }
    h.keyslots.push_back(std::move(k));
  }
  if (const cJSON* tokens = JsonObject(j.get(), "tokens")) {
    cJSON_ArrayForEach(item, tokens) {
      LuksToken t;
      if (!item->string || !ParseId(item->string, &t.id)) continue;
      t.type = std::string(JsonString(item, "type").value_or(""));
      t.key_description = std::string(JsonString(item, "key_description").value_or(""));
      if (const cJSON* ks = JsonArray(item, "keyslots")) {
        const cJSON* s = nullptr;
        cJSON_ArrayForEach(s, ks) {
          int id = 0;
          if (cJSON_IsString(s) && ParseId(s->valuestring, &id)) t.keyslots.push_back(id);
        }
      }
      h.tokens.push_back(std::move(t));
    }
  }
  auto by_id = [](const auto& a, const auto& b) { return a.id < b.id; };
  std::sort(h.keyslots.begin(), h.keyslots.end(), by_id);
  std::sort(h.tokens.begin(), h.tokens.end(), by_id);
  *out = std::move(h);
  return 0;
}

}  // namespace hpcs
