// Changing a config file the way a person would: one value, or one whole
// section, replaced in place; every other line (comments, order, spacing)
// kept. Used by `rewrap --to-crk` to point the config at the new root key.
// The text may hold an API key, so results are Secrets.
#ifndef HPCS_ADMIN_INI_EDIT_H_
#define HPCS_ADMIN_INI_EDIT_H_

#include <string_view>

#include "base/secret.h"

namespace hpcs {

// `key = value` in `section` (names case-insensitive): the first such line
// replaced (later duplicates dropped), else added at the end of the
// section, else a new section at the end of the text.
Secret SetIniValue(std::string_view text, std::string_view section, std::string_view key,
                   std::string_view value);

// The lines of `section` (without its header); empty when there is none.
Secret IniSectionBody(std::string_view text, std::string_view section);

// `section`'s lines replaced by `body` (the header kept), or the section
// added at the end when there is none.
Secret ReplaceIniSection(std::string_view text, std::string_view section, std::string_view body);

}  // namespace hpcs

#endif  // HPCS_ADMIN_INI_EDIT_H_
