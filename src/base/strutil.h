// Small string helpers shared by the parsers.
#ifndef HPCS_BASE_STRUTIL_H_
#define HPCS_BASE_STRUTIL_H_

#include <string>
#include <string_view>
#include <vector>

namespace hpcs {

std::string_view Trim(std::string_view s);
std::string ToLower(std::string_view s);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
std::vector<std::string> Split(std::string_view s, char sep);  // empty parts dropped
// Parses a non-negative decimal integer; false on junk or overflow.
bool ParseUint(std::string_view s, unsigned long long* out);

// The longest time any option or server may make us wait: one day.
inline constexpr long kMaxSeconds = 86400;
inline constexpr char kSecondsRange[] = "a number of seconds from 1 to 86400";
// A whole number of seconds from 1 to kMaxSeconds.
bool ParseSeconds(std::string_view s, long* out);
// Printable rendering of untrusted bytes for messages: control characters
// become '?', and the result is cut at `max` characters.
std::string Printable(std::string_view s, size_t max);
// One log line from any text: control characters (and the C1 controls of
// UTF-8) become \xNN, so that a file name cannot start a line of its own or
// send escape sequences to a terminal. Other bytes are kept.
std::string EscapeControls(std::string_view s);

}  // namespace hpcs

#endif  // HPCS_BASE_STRUTIL_H_
