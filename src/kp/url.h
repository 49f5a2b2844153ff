// The one reading of an https URL, libcurl's own (curl_url()): the host and
// port compared by the boot allow-list, matched by rd.hpcs.resolve pins and
// named in messages are the ones curl connects to.
#ifndef HPCS_KP_URL_H_
#define HPCS_KP_URL_H_

#include <string>
#include <string_view>

namespace hpcs {

struct HttpsUrl {
  bool https = true;  // false: a plain http:// URL (ParseUrl with kHttpAllowed only)
  std::string host;   // lowercased; an IPv6 address in brackets
  int port = 443;     // 80 when plain http and none is written
  // What follows HOST[:PORT], as written: the path ("" or "/..." up to a '?'
  // or '#'), and whether a query or a fragment follows (even an empty one).
  std::string path;
  bool has_query = false;
  bool has_fragment = false;
  // "host:port", as in messages and curl's CURLOPT_RESOLVE.
  std::string Origin() const { return host + ":" + std::to_string(port); }
};

// Reads `url` as curl does and fills *out (only on success). -EINVAL, with
// the reason and the URL (UrlForMessage) in *err, unless the scheme is https,
// there is a host, no user name or password, the port is 1..65535, and the
// URL is written as curl reads it: "https://" HOST [":" PORT] and then "/",
// "?", "#" or the end, HOST being the host curl finds (so no escapes in it,
// no other number of slashes). The path, query and fragment are taken as
// written.
int ParseHttpsUrl(std::string_view url, HttpsUrl* out, std::string* err);

// The same rules, for a URL that may also be plain "http://" (with
// kHttpAllowed): only the instance metadata service is ever reached that way
// (kp/vpc_identity.h says which hosts).
enum class UrlSchemes { kHttpsOnly, kHttpAllowed };
int ParseUrl(std::string_view url, UrlSchemes schemes, HttpsUrl* out, std::string* err);

// `url` for a message: as written, but with whatever could be a user name or
// password (up to the last '@' of the authority) replaced by "***".
std::string UrlForMessage(std::string_view url);

}  // namespace hpcs

#endif  // HPCS_KP_URL_H_
