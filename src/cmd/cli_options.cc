#include "cmd/cli_options.h"

#include <algorithm>

#include "base/strutil.h"

namespace hpcs {
namespace {

// What a missing or unusable value of `o` should have been.
std::string_view Needs(const Option& o) {
  switch (o.type) {
    case OptionType::kFileName:
      return "a file name";
    case OptionType::kSeconds:
      return kSecondsRange;
    default:
      return "a value";
  }
}

bool ValueIsValid(const Option& o, const std::string& v) {
  long s = 0;
  if (o.type == OptionType::kFileName) return !v.empty();
  if (o.type == OptionType::kSeconds) return ParseSeconds(v, &s);
  return true;
}

bool Matches(const ArgReader& r, const Option& o, InlineFlagValue inline_flag) {
  if (r.arg() != o.name && (o.alias.empty() || r.arg() != o.alias)) return false;
  return o.TakesValue() || !r.has_inline() || inline_flag == InlineFlagValue::kIgnored;
}

// "--config FILE", "-h, --help"
std::string HelpLabel(const Option& o) {
  std::string label = o.alias.empty() ? "" : std::string(o.alias) + ", ";
  label += o.name;
  if (!o.value_name.empty()) label += " " + std::string(o.value_name);
  return label;
}

}  // namespace

long OptionValues::Get(const Seconds& o) const {
  long s = o.default_seconds;
  if (Given(o)) ParseSeconds(Last(o, ""), &s);  // checked when it was read
  return s;
}

const std::vector<std::string>& OptionValues::Get(const TextList& o) const {
  static const std::vector<std::string> kNone;
  auto it = values_.find(o.name);
  return it == values_.end() ? kNone : it->second;
}

std::string OptionValues::Last(const Option& o, std::string_view fallback) const {
  auto it = values_.find(o.name);
  return std::string(it == values_.end() ? fallback : std::string_view(it->second.back()));
}

bool ArgReader::Next() {
  if (++i_ >= argv_.size()) return false;
  arg_ = argv_[i_];
  has_inline_ = false;
  if (size_t eq = arg_.find('='); StartsWith(arg_, "--") && eq != std::string::npos) {
    inline_value_ = arg_.substr(eq + 1);
    arg_.resize(eq);
    has_inline_ = true;
  }
  return true;
}

bool ArgReader::TakeValue(std::string* out) {
  if (has_inline_) {
    *out = inline_value_;
    return true;
  }
  if (i_ + 1 >= argv_.size()) return false;
  *out = argv_[++i_];
  return true;
}

std::optional<std::string> ReadOption(ArgReader& r, const OptionList& options,
                                      InlineFlagValue inline_flag, std::string_view prefix,
                                      OptionValues* out) {
  auto it = std::find_if(options.begin(), options.end(),
                         [&](const Option* o) { return Matches(r, *o, inline_flag); });
  if (it == options.end()) return std::nullopt;
  const Option& o = **it;
  std::string value;
  if (o.TakesValue() && (!r.TakeValue(&value) || !ValueIsValid(o, value))) {
    return std::string(prefix) + std::string(o.name) + " needs " + std::string(Needs(o));
  }
  out->Add(o, std::move(value));
  return "";
}

std::string OptionHelp(const OptionList& options) {
  size_t width = 0;
  for (const Option* o : options) width = std::max(width, HelpLabel(*o).size());
  std::string help;
  for (const Option* o : options) {
    std::string label = HelpLabel(*o);
    label.resize(width + 2, ' ');
    help += "  " + label + std::string(o->help);
    if (!o->default_text.empty()) help += " (default " + std::string(o->default_text) + ")";
    if (o->type == OptionType::kSeconds) {
      help += " (default " + std::to_string(o->default_seconds) + ")";
    }
    help += "\n";
  }
  return help;
}

}  // namespace hpcs
