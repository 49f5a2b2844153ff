#include "core/cmdline.h"

#include <cerrno>

#include "base/strutil.h"
#include "kp/url.h"

namespace hpcs {

namespace {

// Lower-case letters, digits and '-', not first or last: one DNS label.
bool IsRegion(std::string_view s) {
  if (s.empty() || s.front() == '-' || s.back() == '-') return false;
  for (char ch : s) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) return false;
  }
  return true;
}

// An instance id: a UUID, 8-4-4-4-12 lower-case hex digits.
bool IsInstanceId(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (dash ? s[i] != '-' : !hex) return false;
  }
  return true;
}

// A host name form of IsKmsHost: [INSTANCE "."] before REGION after.
struct KmsHostForm {
  bool instance;
  std::string_view before, after;
};
// As IBM documents them (docs key-protect: "Regions and endpoints",
// "Provisioning a Dedicated instance"; hs-crypto: "Regions and locations").
// Key Protect Dedicated documents a public instance endpoint only; a private
// one is not taken until IBM documents its form.
constexpr KmsHostForm kKmsHostForms[] = {
    {false, "", ".kms.cloud.ibm.com"},                     // Key Protect
    {false, "private.", ".kms.cloud.ibm.com"},             //
    {false, "api.", ".hs-crypto.cloud.ibm.com"},           // HPCS, port-based
    {false, "api.private.", ".hs-crypto.cloud.ibm.com"},   //
    {true, "api.", ".hs-crypto.appdomain.cloud"},          // HPCS, instance-based
    {true, "api.private.", ".hs-crypto.appdomain.cloud"},  //
    {true, "api.", ".kms.appdomain.cloud"},                // Key Protect Dedicated
};

bool Matches(const KmsHostForm& f, std::string_view host) {
  if (f.instance) {
    if (host.size() < 37 || !IsInstanceId(host.substr(0, 36)) || host[36] != '.') return false;
    host.remove_prefix(37);
  }
  if (host.size() <= f.before.size() + f.after.size() || !StartsWith(host, f.before) ||
      !EndsWith(host, f.after)) {
    return false;
  }
  return IsRegion(host.substr(f.before.size(), host.size() - f.before.size() - f.after.size()));
}

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

// What `u` has beyond https://HOST[:PORT][/]: "a path and a query", or "".
std::string Beyond(const HttpsUrl& u) {
  std::vector<std::string> extra;
  if (!u.path.empty() && u.path != "/") extra.push_back("a path");
  if (u.has_query) extra.push_back("a query");
  if (u.has_fragment) extra.push_back("a fragment");
  if (extra.size() < 2) return extra.empty() ? "" : extra[0];
  std::string last = extra.back();
  extra.pop_back();
  return Join(extra, ", ") + " and " + last;
}

}  // namespace

bool IsIamHost(std::string_view host) {
  // Not the staging hosts (iam.test.cloud.ibm.com): no staging KMS host is
  // taken either, and a staging config names its own hosts.
  return host == "iam.cloud.ibm.com" || host == "private.iam.cloud.ibm.com";
}

bool IsKmsHost(std::string_view host) {
  for (const KmsHostForm& f : kKmsHostForms) {
    if (Matches(f, host)) return true;
  }
  return false;
}

int CheckBootUrl(BootUrlFor service, std::string_view configured, std::string_view url,
                 std::string* why) {
  // A URL that is not https replaces the configured one if its host may, and
  // is then refused by CheckKmsSettings as it is in the config (hpcs-unlock
  // exits 2): so "http://h" is judged as "https://h".
  HttpsUrl u, mine;
  const std::string judged = AsHttps(url);
  if (ParseHttpsUrl(judged, &u, why) < 0) {
    // The refusal names the URL as it was written.
    const std::string shown = "'" + UrlForMessage(judged) + "'";
    if (why && judged != url && why->starts_with(shown)) {
      why->replace(0, shown.size(), "'" + UrlForMessage(url) + "'");
    }
    return -EINVAL;
  }
  // The services take their paths from us: one in the URL would only send
  // the secret somewhere else on the host (anyone's function or app there).
  if (std::string extra = Beyond(u); !extra.empty()) {
    if (why) *why = "it has " + extra + ": a boot URL is https://HOST[:PORT] and nothing more";
    return -EINVAL;
  }
  // A configured URL that is not one has no host to match.
  std::string configured_host = ParseHttpsUrl(configured, &mine, nullptr) == 0 ? mine.host : "";
  bool iam = service == BootUrlFor::kIam;
  if (u.host == configured_host || (iam ? IsIamHost(u.host) : IsKmsHost(u.host))) return 0;
  if (why) {
    *why = "its host '" + u.host + "' is neither the configured one ('" + configured_host +
           "') nor " +
           (iam ? "an IAM host (iam.cloud.ibm.com, private.iam.cloud.ibm.com)"
                : "a Key Protect or HPCS host (REGION.kms.cloud.ibm.com and the others of "
                  "hpcs-unlock(8))");
  }
  return -EPERM;
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
    } else if (opt == "grace") {
      if (unsigned long long n = 0; ParseUint(value, &n) && n <= kMaxGraceS) {
        b.grace_s = static_cast<long>(n);
      } else {
        b.warnings.push_back("ignoring '" + w + "': not a number of seconds from 0 to " +
                             std::to_string(kMaxGraceS));
      }
    } else if (opt == "key_timeout") {
      if (unsigned n = 0; ParseKeyTimeout(value, &n)) {
        b.key_timeout_s = n;
      } else {
        b.warnings.push_back("ignoring '" + w + "': not 0 (no timeout) or " + kSecondsRange);
      }
    } else if (opt == "token_timeout") {
      if (long n = 0; ParseSeconds(value, &n)) {
        if (n > static_cast<long>(kMaxTokenTimeoutS)) {
          b.warnings.push_back("'" + w + "': at most " + std::to_string(kMaxTokenTimeoutS) +
                               " s, so " + std::to_string(kMaxTokenTimeoutS));
          n = kMaxTokenTimeoutS;
        }
        b.token_timeout_s = static_cast<unsigned>(n);
      } else {
        b.warnings.push_back("ignoring '" + w + "': not a number of seconds from 1 to " +
                             std::to_string(kMaxTokenTimeoutS));
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

void ApplyBootOptions(const BootOptions& b, Config* c, std::vector<std::string>* refused,
                      std::vector<std::string>* changed) {
  auto take_url = [&](std::string_view option, BootUrlFor service, const std::string& url,
                      std::string* target) {
    if (url.empty() || url == *target) return;
    std::string why;
    int r = CheckBootUrl(service, *target, url, &why);
    if (r == 0 || (r == -EPERM && c->allow_boot_endpoints)) {
      if (changed) {
        changed->push_back(std::string(option) + " changes the " +
                           (service == BootUrlFor::kIam ? "IAM" : "KMS") + " endpoint from " +
                           UrlForMessage(*target) + " to " + UrlForMessage(url));
      }
      *target = url;
    } else if (refused) {
      std::string hint =
          r == -EPERM ? " (to allow any host: [HFL] allow_boot_endpoints = yes in " + c->path + ")"
                      : "";
      refused->push_back("ignoring '" + std::string(option) + "=" + UrlForMessage(url) +
                         "': " + why + "; using " + UrlForMessage(*target) + hint);
    }
  };
  take_url("rd.hpcs.endpoint", BootUrlFor::kKms, b.endpoint, &c->endpoint_url);
  take_url("rd.hpcs.iam", BootUrlFor::kIam, b.iam, &c->iam_endpoint_url);
  if (!b.crk.empty()) c->default_crk_uuid = b.crk;
  if (!b.proxy.empty()) c->proxy = b.proxy;
  if (b.key_timeout_s) c->key_timeout_s = *b.key_timeout_s;
  if (b.token_timeout_s) c->token_timeout_s = *b.token_timeout_s;
  for (const auto& r : b.resolve) c->resolve.push_back(r);
}

}  // namespace hpcs
