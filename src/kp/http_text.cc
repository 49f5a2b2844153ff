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

bool SplitHttpsUrl(std::string_view url, std::string* host, int* port) {
  if (!StartsWith(url, "https://")) return false;
  std::string_view rest = url.substr(8);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  int p = 443;
  std::string_view h = rest;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return false;
    h = rest.substr(0, close + 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') return false;
  } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    h = rest.substr(0, colon);
    rest = rest.substr(colon);
  } else {
    rest = {};
  }
  if (!rest.empty()) {
    unsigned long long v = 0;
    if (!ParseUint(rest.substr(1), &v) || v == 0 || v > 65535) return false;
    p = static_cast<int>(v);
  }
  if (h.empty()) return false;
  *host = std::string(h);
  *port = p;
  return true;
}

}  // namespace hpcs
