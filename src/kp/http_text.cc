#include "kp/http_text.h"

#include <algorithm>

#include "base/encoding.h"
#include "base/strutil.h"

namespace hpcs {

std::optional<std::string_view> HeaderValue(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':' ||
      ToLower(line.substr(0, name.size())) != ToLower(name)) {
    return std::nullopt;
  }
  return Trim(line.substr(name.size() + 1));
}

std::optional<long> ParseRetryAfter(std::string_view line) {
  auto value = HeaderValue(line, "retry-after");
  unsigned long long secs = 0;
  if (!value || !ParseUint(*value, &secs)) return std::nullopt;
  return static_cast<long>(std::min<unsigned long long>(secs, kMaxSeconds));
}

void UrlEncodeAppend(std::string_view in, Secret* out) {
  for (char c : in) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '-' ||
        u == '_' || u == '.' || u == '~') {
      out->Append(&c, 1);
    } else {
      auto digits = HexByte(u, HexCase::kUpper);
      out->Append("%", 1);
      out->Append(digits.data(), 2);
    }
  }
}

std::string UrlEncode(std::string_view in) {
  Secret s;
  UrlEncodeAppend(in, &s);
  return std::string(s.view());
}

}  // namespace hpcs
