#include "base/strutil.h"

#include <charconv>

#include "base/encoding.h"

namespace hpcs {

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::string ToLower(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return r;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool EndsWith(std::string_view s, std::string_view x) {
  return s.size() >= x.size() && s.substr(s.size() - x.size()) == x;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string r;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) r.append(sep);
    r.append(parts[i]);
  }
  return r;
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> r;
  while (true) {
    size_t p = s.find(sep);
    std::string_view part = Trim(s.substr(0, p));
    if (!part.empty()) r.emplace_back(part);
    if (p == std::string_view::npos) break;
    s = s.substr(p + 1);
  }
  return r;
}

bool ParseUint(std::string_view s, unsigned long long* out) {
  if (s.empty()) return false;
  unsigned long long v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return false;
  *out = v;
  return true;
}

bool ParseSeconds(std::string_view s, long* out) {
  unsigned long long n = 0;
  if (!ParseUint(s, &n) || n == 0 || n > static_cast<unsigned long long>(kMaxSeconds)) {
    return false;
  }
  *out = static_cast<long>(n);
  return true;
}

std::string Printable(std::string_view s, size_t max) {
  std::string r;
  for (char c : s.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    r.push_back(u < 0x20 || u == 0x7f ? (c == '\n' || c == '\t' ? ' ' : '?') : c);
  }
  if (s.size() > max) r.append("...");
  return r;
}

std::string EscapeControls(std::string_view s) {
  std::string r;
  r.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto u = static_cast<unsigned char>(s[i]);
    // U+0080..U+009F in UTF-8: 0xC2 then 0x80..0x9F.
    bool c1 =
        u == 0xc2 && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xe0) == 0x80;
    if (u >= 0x20 && u != 0x7f && !c1) {
      r.push_back(s[i]);
      continue;
    }
    if (c1) u = static_cast<unsigned char>(s[++i]);
    r.append(c1 ? "\\u00" : "\\x");
    r.append(HexByte(u).data(), 2);
  }
  return r;
}

}  // namespace hpcs
