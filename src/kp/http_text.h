// The text of HTTP: header lines and URL encoding (URLs: url.h). Pure functions,
// shared by the transport, the Key Protect client and the report.
#ifndef HPCS_KP_HTTP_TEXT_H_
#define HPCS_KP_HTTP_TEXT_H_

#include <optional>
#include <string>
#include <string_view>

#include "base/secret.h"

namespace hpcs {

// The value of a "Name: value" header line (name in any case), trimmed.
std::optional<std::string_view> HeaderValue(std::string_view header_line, std::string_view name);

// The seconds of a "Retry-After: N" header line (any case, up to a day);
// nullopt for other headers and for the HTTP-date form.
std::optional<long> ParseRetryAfter(std::string_view header_line);

// Percent-encodes for application/x-www-form-urlencoded and URL paths.
void UrlEncodeAppend(std::string_view in, Secret* out);
std::string UrlEncode(std::string_view in);

}  // namespace hpcs

#endif  // HPCS_KP_HTTP_TEXT_H_
