#include "json.h"

#include <malloc.h>
#include <mbedtls/base64.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace hpcs {
namespace {

void* JsonMalloc(size_t n) { return malloc(n); }

void JsonFree(void* p) {
  if (!p) return;
  Wipe(p, malloc_usable_size(p));
  free(p);
}

}  // namespace

void JsonInit() {
  static std::once_flag once;
  std::call_once(once, [] {
    cJSON_Hooks hooks{JsonMalloc, JsonFree};
    cJSON_InitHooks(&hooks);
  });
}

Json JsonParse(std::string_view text) {
  JsonInit();
  return Json(cJSON_ParseWithLength(text.data(), text.size()));
}

Secret JsonPrint(const cJSON* j) {
  JsonInit();
  char* s = cJSON_PrintUnformatted(j);
  if (!s) throw std::bad_alloc();
  Secret out(s, strlen(s));
  JsonFree(s);
  return out;
}

std::optional<std::string_view> JsonString(const cJSON* obj, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (!cJSON_IsString(v) || !v->valuestring) return std::nullopt;
  return std::string_view(v->valuestring);
}

std::optional<double> JsonNumber(const cJSON* obj, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (!cJSON_IsNumber(v)) return std::nullopt;
  return v->valuedouble;
}

const cJSON* JsonObject(const cJSON* obj, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, name);
  return cJSON_IsObject(v) ? v : nullptr;
}

const cJSON* JsonArray(const cJSON* obj, const char* name) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, name);
  return cJSON_IsArray(v) ? v : nullptr;
}

std::string Base64Encode(std::span<const std::byte> data) {
  size_t olen = 0;
  auto* src = reinterpret_cast<const unsigned char*>(data.data());
  mbedtls_base64_encode(nullptr, 0, &olen, src, data.size());
  std::string out(olen, '\0');
  if (mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &olen, src,
                            data.size()) != 0) {
    return {};
  }
  out.resize(olen);
  return out;
}

int Base64Decode(std::string_view text, Secret* out) {
  if (text.size() % 4 != 0) return -EINVAL;  // the KMS always pads
  size_t olen = 0;
  auto* src = reinterpret_cast<const unsigned char*>(text.data());
  int r = mbedtls_base64_decode(nullptr, 0, &olen, src, text.size());
  if (r == MBEDTLS_ERR_BASE64_INVALID_CHARACTER) return -EINVAL;
  Secret buf(olen);
  if (mbedtls_base64_decode(buf.data(), buf.size(), &olen, src, text.size()) != 0) return -EINVAL;
  buf.Truncate(olen);
  *out = std::move(buf);
  return 0;
}

}  // namespace hpcs
