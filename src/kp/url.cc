#include "kp/url.h"

#include <curl/curl.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "base/error.h"
#include "base/strutil.h"

namespace hpcs {
namespace {

struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlDeleter>;

struct CurlFreeDeleter {
  void operator()(char* p) const { curl_free(p); }
};
using CurlString = std::unique_ptr<char, CurlFreeDeleter>;

// One part of a parsed URL; false when curl has none.
bool GetPart(CURLU* u, CURLUPart part, unsigned flags, std::string* out) {
  char* raw = nullptr;
  if (curl_url_get(u, part, &raw, flags) != CURLUE_OK) return false;
  CurlString owned(raw);
  *out = raw ? raw : "";
  return true;
}

// Whether `rest` (what follows "https://" or "http://") starts with `host`, in any case,
// then ":" and digits at most, then the end or the start of a path, query or
// fragment; *tail gets what follows the port.
bool WrittenAsRead(std::string_view rest, std::string_view host, std::string_view* tail) {
  if (rest.size() < host.size() || ToLower(rest.substr(0, host.size())) != ToLower(host)) {
    return false;
  }
  rest.remove_prefix(host.size());
  if (!rest.empty() && rest[0] == ':') {
    size_t digits = 1;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits == 1) return false;
    rest.remove_prefix(digits);
  }
  *tail = rest;
  return rest.empty() || rest[0] == '/' || rest[0] == '?' || rest[0] == '#';
}

}  // namespace

std::string UrlForMessage(std::string_view url) {
  // A user part ends at an '@'. Where it starts: after "scheme:" and its
  // slashes (curl takes one to three), or at the beginning. Up to the last
  // '@' of all, since a password written without escapes can hold a '/',
  // '?' or '#' that curl would take for the end of the authority.
  size_t at = url.rfind('@');
  if (at == std::string_view::npos) return EscapeControls(url);
  size_t start = 0;
  size_t colon = url.find(':');
  if (colon != std::string_view::npos && colon < at && url[colon + 1] == '/') {
    start = url.find_first_not_of('/', colon + 1);
  }
  if (start > at) start = at;
  std::string shown(url.substr(0, start));
  shown += "***";
  shown += url.substr(at);
  return EscapeControls(shown);
}

int ParseHttpsUrl(std::string_view url, HttpsUrl* out, std::string* err) {
  return ParseUrl(url, UrlSchemes::kHttpsOnly, out, err);
}

int ParseUrl(std::string_view url, UrlSchemes schemes, HttpsUrl* out, std::string* err) {
  const bool http_ok = schemes == UrlSchemes::kHttpAllowed;
  const std::string_view wanted = http_ok ? "an http:// or https:// URL" : "an https:// URL";
  auto refuse = [&](std::string_view why) {
    return Fail(err, -EINVAL, "'" + UrlForMessage(url) + "' " + std::string(why));
  };
  if (url.find('\0') != std::string_view::npos) return refuse("holds a NUL byte");
  const std::string lead = ToLower(url.substr(0, 6));
  const bool plain = http_ok && StartsWith(lead, "http:");
  if (!plain && !StartsWith(lead, "https:")) return refuse("is not " + std::string(wanted));
  const std::string_view scheme_wanted = plain ? "http" : "https";
  CurlUrl u(curl_url());
  if (!u) return Fail(err, -ENOMEM, "out of memory for a URL");
  const std::string text(url);
  if (CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, text.c_str(), 0); rc != CURLUE_OK) {
    return refuse(std::string("is not a URL curl can use: ") + curl_url_strerror(rc));
  }
  std::string scheme, host, port, ignored;
  if (!GetPart(u.get(), CURLUPART_SCHEME, 0, &scheme) || scheme != scheme_wanted) {
    return refuse("is not " + std::string(wanted));
  }
  if (GetPart(u.get(), CURLUPART_USER, 0, &ignored) ||
      GetPart(u.get(), CURLUPART_PASSWORD, 0, &ignored)) {
    return refuse("holds a user name or password: no credentials go in a URL");
  }
  if (!GetPart(u.get(), CURLUPART_HOST, 0, &host) || host.empty()) return refuse("has no host");
  unsigned long long port_number = 0;
  if (!GetPart(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT, &port) ||
      !ParseUint(port, &port_number) || port_number == 0 || port_number > 65535) {
    return refuse("has a port that is not from 1 to 65535");
  }
  const size_t skip = scheme.size() + 3;  // "https://" or "http://"
  std::string_view tail;
  if (url.size() < skip || url.substr(scheme.size(), 3) != "://" ||
      !WrittenAsRead(url.substr(skip), host, &tail)) {
    return refuse("is not written as " + scheme + "://HOST[:PORT][/PATH]: curl would connect to '" +
                  EscapeControls(host) + "'");
  }
  const size_t path_end = std::min(tail.find_first_of("?#"), tail.size());
  const size_t hash = tail.find('#');
  out->https = !plain;
  out->host = ToLower(host);
  out->port = static_cast<int>(port_number);
  out->path = tail.substr(0, path_end);
  out->has_query = path_end < tail.size() && tail[path_end] == '?';
  out->has_fragment = hash != std::string_view::npos;
  return 0;
}

}  // namespace hpcs
