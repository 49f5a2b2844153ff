#include "cmd/luks_command.h"

#include <unistd.h>

#include <cstdio>

#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "core/hpcs_token.h"

namespace hpcs {

namespace {

// One field of a line: what would split it (white space) or end it (control
// characters), and the escape character itself, as \xNN; "-" when empty.
std::string Field(std::string_view s) {
  if (s.empty()) return "-";
  std::string out;
  for (unsigned char c : s) {
    if (c <= ' ' || c == 0x7f || c == '\\') {
      char hex[5];
      snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string SlotList(const std::vector<int>& slots) {
  std::string out;
  for (int s : slots) out += (out.empty() ? "" : ",") + std::to_string(s);
  return out.empty() ? "-" : out;
}

}  // namespace

std::string FormatLuksLines(const LuksHeader& h) {
  std::string out;
  for (const auto& k : h.keyslots) {
    out += "keyslot " + std::to_string(k.id) + " " + Field(k.kdf) + " " +
           std::to_string(k.memory_kib) + "\n";
  }
  for (const auto& t : h.tokens) {
    out += "token " + std::to_string(t.id) + " " + Field(t.type) + " " + SlotList(t.keyslots);
    HpcsToken ht;
    if (!t.key_description.empty()) {
      out += " " + Field(t.key_description);
    } else if (t.type == kHpcsTokenType && ParseHpcsToken(t.json, &ht, nullptr) == 0) {
      out += " " + Field(ht.crk) + " " + Field(ht.instance) + " " + Field(ht.name);
    }
    out += "\n";
  }
  return out;
}

std::string FormatLuksJson(const LuksHeader& h) {
  Json j(cJSON_CreateObject());
  cJSON* slots = cJSON_AddArrayToObject(j.get(), "keyslots");
  for (const auto& k : h.keyslots) {
    cJSON* o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", k.id);
    cJSON_AddStringToObject(o, "kdf", k.kdf.c_str());
    cJSON_AddNumberToObject(o, "memory_kib", static_cast<double>(k.memory_kib));
    cJSON_AddItemToArray(slots, o);
  }
  cJSON* tokens = cJSON_AddArrayToObject(j.get(), "tokens");
  for (const auto& t : h.tokens) {
    cJSON* o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", t.id);
    cJSON_AddStringToObject(o, "type", t.type.c_str());
    cJSON* ks = cJSON_AddArrayToObject(o, "keyslots");
    for (int s : t.keyslots) cJSON_AddItemToArray(ks, cJSON_CreateNumber(s));
    if (!t.key_description.empty()) {
      cJSON_AddStringToObject(o, "key_description", t.key_description.c_str());
    }
    HpcsToken ht;
    if (t.type == kHpcsTokenType && ParseHpcsToken(t.json, &ht, nullptr) == 0) {
      cJSON_AddStringToObject(o, "crk", ht.crk.c_str());
      cJSON_AddStringToObject(o, "instance", ht.instance.c_str());
      cJSON_AddStringToObject(o, "name", ht.name.c_str());
    }
    cJSON_AddItemToArray(tokens, o);
  }
  return std::string(JsonPrint(j.get()).view()) + "\n";
}

std::string CheckLuks(const Args& a) {
  return a.Get(kLuksDevice).empty() ? "--device DEVICE is required" : "";
}

int LuksCommand(Context& ctx) {
  const std::string device = ctx.args.Get(kLuksDevice);
  LuksHeader h;
  std::string err;
  if (ReadLuksHeader(device, &h, &err) < 0) {
    LogError("Failed to read the LUKS2 header: " + err);
    return kExitFail;
  }
  std::string out = ctx.args.Get(kLuksJson) ? FormatLuksJson(h) : FormatLuksLines(h);
  if (WriteAllFd(STDOUT_FILENO, out, &err) < 0) {
    LogError("Failed to write to standard output: " + err);
    return kExitFail;
  }
  return kExitOk;
}

}  // namespace hpcs
