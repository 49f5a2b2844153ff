#include "admin/luks.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "admin/subprocess.h"
#include "base/json.h"
#include "base/strutil.h"

namespace hpcs {

namespace {

// cryptsetup's exit status for "no key available with this passphrase".
constexpr int kCryptsetupWrongKey = 2;

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

int ReadLuksHeader(const std::string& device, LuksHeader* out, std::string* err) {
  struct stat st;
  if (stat(device.c_str(), &st) != 0) {
    int e = errno;
    if (err) *err = "'" + device + "': " + strerror(e);
    return -e;
  }
  ProcessResult r;
  if (int rc =
          RunProcess({"cryptsetup", "luksDump", "--dump-json-metadata", "--", device}, {}, &r, err);
      rc < 0) {
    return rc;
  }
  if (r.exit_status != 0) {
    // cryptsetup says "Device X is not a valid LUKS device." for LUKS1 too
    // (LUKS1 has no JSON metadata); ask it which.
    ProcessResult is2;
    if (RunProcess({"cryptsetup", "isLuks", "--type", "luks2", "--", device}, {}, &is2, nullptr) ==
            0 &&
        is2.exit_status != 0) {
      if (err) *err = "'" + device + "' is not a LUKS2 volume";
      return -EMEDIUMTYPE;
    }
    if (err) *err = "cryptsetup luksDump '" + device + "': " + DescribeProcessFailure(r);
    return -EIO;
  }
  if (int rc = ParseLuks2Metadata(r.out, out, err); rc < 0) {
    if (err) *err = "'" + device + "': " + *err;
    return rc;
  }
  return 0;
}

int TestLuksPassphrase(const std::string& device, int slot, const Secret& passphrase,
                       std::string* err) {
  ProcessOptions o;
  o.stdin_data = &passphrase;
  ProcessResult r;
  if (int rc = RunProcess({"cryptsetup", "open", "--test-passphrase", "--key-slot",
                           std::to_string(slot), "--key-file", "-", "--", device},
                          o, &r, err);
      rc < 0) {
    return rc;
  }
  if (r.exit_status == 0) return 1;
  if (r.exit_status == kCryptsetupWrongKey) return 0;
  if (err)
    *err = "cryptsetup open --test-passphrase '" + device + "': " + DescribeProcessFailure(r);
  return -EIO;
}

}  // namespace hpcs
