#include "core/cmdline.h"

#include "base/strutil.h"
#include "kp/url.h"

namespace hpcs {

bool IsIbmCloudHost(std::string_view host) {
  // The service's own names: *.cloud.ibm.com (IAM, Key Protect, HPCS) and
  // HPCS's instance endpoints. Not all of appdomain.cloud: anyone's Code
  // Engine or Cloud Foundry app gets a name and a certificate there.
  for (std::string_view suffix : {".cloud.ibm.com", ".hs-crypto.appdomain.cloud"}) {
    if (host.size() > suffix.size() && EndsWith(host, suffix)) return true;
  }
  return false;
}

namespace {

// `url` with its scheme, if it has one other than https, replaced by https:
// "http://h:1/" -> "https://h:1/". Else `url` itself.
std::string AsHttps(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0 || ToLower(url.substr(0, sep)) == "https") {
    return std::string(url);
  }
  for (size_t i = 0; i < sep; ++i) {
    char ch = url[i];
    bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
    bool ok = alpha || (i > 0 && ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.'));
    if (!ok) return std::string(url);  // not a scheme: curl finds none either
  }
  return "https" + std::string(url.substr(sep));
}

}  // namespace

bool BootUrlAllowed(std::string_view configured, std::string_view url, std::string* why) {
  // Only the host counts here. A URL that is not https replaces the
  // configured one if its host may, and is then refused by CheckKmsSettings
  // as it is in the config (hpcs-unlock exits 2): so "http://h" is judged as
  // "https://h".
  HttpsUrl u, mine;
  const std::string judged = AsHttps(url);
  if (ParseHttpsUrl(judged, &u, why) < 0) {
    // The refusal names the URL as it was written.
    const std::string shown = "'" + UrlForMessage(judged) + "'";
    if (why && judged != url && why->starts_with(shown)) {
      why->replace(0, shown.size(), "'" + UrlForMessage(url) + "'");
    }
    return false;
  }
  // A configured URL that is not one has no host to match.
  std::string configured_host = ParseHttpsUrl(configured, &mine, nullptr) == 0 ? mine.host : "";
  if (u.host == configured_host || IsIbmCloudHost(u.host)) return true;
  if (why) {
    *why = "its host '" + u.host + "' is neither the configured one ('" + configured_host +
           "') nor an IBM Cloud host";
  }
  return false;
}

std::vector<std::string> SplitKernelCmdline(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  bool in_quotes = false, have = false;
  for (char c : text) {
    if (c == '"') {
      in_quotes = !in_quotes;
      have = true;
    } else if (!in_quotes && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
      if (have) words.push_back(std::move(cur));
      cur.clear();
      have = false;
    } else {
      cur.push_back(c);
      have = true;
    }
  }
  if (have) words.push_back(std::move(cur));
  return words;
}

BootOptions ParseBootOptions(std::string_view cmdline) {
  BootOptions b;
  for (const std::string& w : SplitKernelCmdline(cmdline)) {
    size_t eq = w.find('=');
    std::string key = w.substr(0, eq);
    bool has_value = eq != std::string::npos;
    std::string value = has_value ? w.substr(eq + 1) : "";
    if (key == "rd.debug") {
      b.debug = !has_value || value != "0";
      continue;
    }
    if (key == "rd.hpcs") {
      std::string v = ToLower(value);
      b.disabled = has_value && (v == "0" || v == "no" || v == "off" || v == "false");
      continue;
    }
    if (!StartsWith(key, "rd.hpcs.")) continue;
    std::string opt = key.substr(8);
    auto need_value = [&]() {
      if (!value.empty()) return true;
      b.warnings.push_back("ignoring '" + w + "': it needs a value");
      return false;
    };
    if (opt == "debug") {
      b.debug = !has_value || value != "0";
    } else if (opt == "timeout") {
      if (long n = 0; ParseSeconds(value, &n)) {
        b.timeout_s = n;
      } else {
        b.warnings.push_back("ignoring '" + w + "': not " + kSecondsRange);
      }
    } else if (opt == "key_timeout") {
      if (unsigned n = 0; ParseKeyTimeout(value, &n)) {
        b.key_timeout_s = n;
      } else {
        b.warnings.push_back("ignoring '" + w + "': not 0 (no timeout) or " + kSecondsRange);
      }
    } else if (opt == "endpoint") {
      if (need_value()) b.endpoint = TrimUrl(value);
    } else if (opt == "iam") {
      if (need_value()) b.iam = TrimUrl(value);
    } else if (opt == "crk") {
      if (need_value()) b.crk = value;
    } else if (opt == "proxy") {
      if (need_value()) b.proxy = value;
    } else if (opt == "keys") {
      if (need_value()) b.keys = Split(value, ',');
    } else if (opt == "resolve") {
      size_t colon = value.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == value.size()) {
        b.warnings.push_back("ignoring '" + w + "': expected rd.hpcs.resolve=HOST:ADDRESS");
      } else {
        b.resolve.push_back(value);
      }
    } else {
      b.warnings.push_back("ignoring unknown option '" + key + "'");
    }
  }
  return b;
}

void ApplyBootOptions(const BootOptions& b, Config* c, std::vector<std::string>* refused) {
  auto take_url = [&](std::string_view option, const std::string& url, std::string* target) {
    if (url.empty()) return;
    std::string why;
    if (c->allow_boot_endpoints || BootUrlAllowed(*target, url, &why)) {
      *target = url;
    } else if (refused) {
      refused->push_back(
          "ignoring '" + std::string(option) + "=" + UrlForMessage(url) + "': " + why + "; using " +
          *target + " (to allow any host: [HFL] allow_boot_endpoints = yes in " + c->path + ")");
    }
  };
  take_url("rd.hpcs.endpoint", b.endpoint, &c->endpoint_url);
  take_url("rd.hpcs.iam", b.iam, &c->iam_endpoint_url);
  if (!b.crk.empty()) c->default_crk_uuid = b.crk;
  if (!b.proxy.empty()) c->proxy = b.proxy;
  if (b.key_timeout_s) c->key_timeout_s = *b.key_timeout_s;
  for (const auto& r : b.resolve) c->resolve.push_back(r);
}

}  // namespace hpcs
