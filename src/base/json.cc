#include "base/json.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "base/wipe_alloc.h"

namespace hpcs {

void JsonInit() {
  static std::once_flag once;
  std::call_once(once, [] {
    cJSON_Hooks hooks{WipingMalloc, WipingFree};
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
  WipingFree(s);
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

}  // namespace hpcs
