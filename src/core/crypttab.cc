#include "core/crypttab.h"

#include <algorithm>

#include "base/strutil.h"

namespace hpcs {

bool CrypttabEntry::Has(std::string_view option) const {
  return std::any_of(options.begin(), options.end(), [&](const std::string& o) {
    return o == option || StartsWith(o, std::string(option) + "=");
  });
}

std::vector<CrypttabEntry> ParseCrypttab(std::string_view text) {
  std::vector<CrypttabEntry> out;
  int n = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++n;
    std::vector<std::string> fields;
    std::string field;
    for (char c : line) {
      if (c == ' ' || c == '\t' || c == '\r') {
        if (!field.empty()) fields.push_back(std::move(field));
        field.clear();
      } else {
        field.push_back(c);
      }
    }
    if (!field.empty()) fields.push_back(std::move(field));
    if (fields.size() < 2 || fields[0][0] == '#') continue;
    CrypttabEntry e;
    e.name = fields[0];
    e.source = fields[1];
    e.key = fields.size() > 2 ? fields[2] : "none";
    if (fields.size() > 3) e.options = Split(fields[3], ',');
    e.line = n;
    out.push_back(std::move(e));
  }
  return out;
}

std::string CrypttabSourcePath(std::string_view source) {
  static const std::pair<std::string_view, std::string_view> kTags[] = {
      {"UUID=", "/dev/disk/by-uuid/"},
      {"PARTUUID=", "/dev/disk/by-partuuid/"},
      {"LABEL=", "/dev/disk/by-label/"},
      {"PARTLABEL=", "/dev/disk/by-partlabel/"},
  };
  for (const auto& [tag, dir] : kTags) {
    if (StartsWith(source, tag)) {
      std::string_view v = source.substr(tag.size());
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return std::string(dir) + (tag == "UUID=" ? ToLower(v) : std::string(v));
    }
  }
  return std::string(source);
}

}  // namespace hpcs
