// cJSON with an owner for every tree and allocation hooks that wipe memory
// before it is freed, so parsed or printed plaintext leaves no copies behind.
#ifndef HPCS_BASE_JSON_H_
#define HPCS_BASE_JSON_H_

#include <cjson/cJSON.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/secret.h"

namespace hpcs {

struct JsonDeleter {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, JsonDeleter>;

// Installs the wiping allocation hooks; idempotent, call before any cJSON use.
void JsonInit();

// nullptr when text is not JSON.
Json JsonParse(std::string_view text);

// Serialises compactly into a Secret (the intermediate copy is wiped).
Secret JsonPrint(const cJSON* j);

// Member lookups; nullopt when absent or of another type.
std::optional<std::string_view> JsonString(const cJSON* obj, const char* name);
std::optional<double> JsonNumber(const cJSON* obj, const char* name);
const cJSON* JsonObject(const cJSON* obj, const char* name);
const cJSON* JsonArray(const cJSON* obj, const char* name);

}  // namespace hpcs

#endif  // HPCS_BASE_JSON_H_
