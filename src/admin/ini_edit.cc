#include "admin/ini_edit.h"

#include <optional>
#include <string>

#include "base/strutil.h"

namespace hpcs {

namespace {

// The section a header line opens, lowered; nullopt for any other line.
std::optional<std::string> HeaderOf(std::string_view line) {
  std::string_view t = Trim(line);
  if (t.empty() || t[0] != '[') return std::nullopt;
  size_t close = t.find(']');
  if (close == std::string_view::npos) return std::nullopt;
  return ToLower(Trim(t.substr(1, close - 1)));
}

// The key a setting line sets, lowered; "" for comments and blank lines.
std::string KeyOf(std::string_view line) {
  std::string_view t = Trim(line);
  if (t.empty() || t[0] == '#' || t[0] == ';') return "";
  size_t eq = t.find_first_of("=:");
  return eq == std::string_view::npos ? "" : ToLower(Trim(t.substr(0, eq)));
}

// Calls f(line, section) for each line (without its '\n').
template <typename F>
void ForEachLine(std::string_view text, F f) {
  std::string section;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (auto h = HeaderOf(line)) section = *h;
    f(line, section);
  }
}

void AppendLine(Secret* out, std::string_view line) {
  out->Append(line);
  out->Append("\n");
}

}  // namespace

Secret SetIniValue(std::string_view text, std::string_view section, std::string_view key,
                   std::string_view value) {
  std::string want = ToLower(section), want_key = ToLower(key);
  std::string setting = std::string(key) + " = " + std::string(value);
  Secret out;
  bool done = false, in_section = false, seen_section = false;
  ForEachLine(text, [&](std::string_view line, const std::string& sec) {
    bool header = HeaderOf(line).has_value();
    if (header && in_section && !done) {
      // Leaving the section without the key: add it at its end.
      AppendLine(&out, setting);
      done = true;
    }
    in_section = sec == want;
    seen_section = seen_section || in_section;
    if (!header && in_section && KeyOf(line) == want_key) {
      if (!done) AppendLine(&out, setting);
      done = true;
      return;
    }
    AppendLine(&out, line);
  });
  if (!done) {
    if (!seen_section) AppendLine(&out, "[" + std::string(section) + "]");
    AppendLine(&out, setting);
  }
  setting.assign(setting.size(), '\0');
  return out;
}

Secret IniSectionBody(std::string_view text, std::string_view section) {
  std::string want = ToLower(section);
  Secret out;
  ForEachLine(text, [&](std::string_view line, const std::string& sec) {
    if (sec == want && !HeaderOf(line)) AppendLine(&out, line);
  });
  return out;
}

Secret ReplaceIniSection(std::string_view text, std::string_view section, std::string_view body) {
  std::string want = ToLower(section);
  Secret out;
  bool replaced = false;
  ForEachLine(text, [&](std::string_view line, const std::string& sec) {
    if (sec != want) {
      AppendLine(&out, line);
      return;
    }
    if (HeaderOf(line)) {
      AppendLine(&out, line);
      if (!replaced) out.Append(body);
      replaced = true;
    }
  });
  if (!replaced) {
    AppendLine(&out, "[" + std::string(section) + "]");
    out.Append(body);
  }
  return out;
}

}  // namespace hpcs
