#include "core/config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "base/fileio.h"
#include "base/strutil.h"
#include "kp/url.h"

namespace hpcs {
namespace {

constexpr size_t kMaxConfigSize = 64 * 1024;

// "value ; comment" and "value # comment": a comment starts at ';' or '#'
// preceded by white space (a URL or an API key may hold '#' otherwise).
std::string_view StripInlineComment(std::string_view v) {
  for (size_t i = 1; i < v.size(); ++i) {
    if ((v[i] == '#' || v[i] == ';') && (v[i - 1] == ' ' || v[i - 1] == '\t')) {
      return v.substr(0, i);
    }
  }
  return v;
}

bool ParseBool(std::string_view v, bool* out) {
  std::string l = ToLower(v);
  if (l == "1" || l == "yes" || l == "true" || l == "on") {
    *out = true;
    return true;
  }
  if (l == "0" || l == "no" || l == "false" || l == "off" || l.empty()) {
    *out = false;
    return true;
  }
  return false;
}

}  // namespace

IniFile::~IniFile() {
  for (auto& [name, section] : sections_) {
    for (auto& [key, value] : section) Wipe(value.data(), value.size());
  }
}

int IniFile::Parse(std::string_view text, IniFile* out, std::string* err) {
  IniFile ini;
  std::string section;
  int lineno = 0;
  for (std::string_view rest = text; !rest.empty();) {
    size_t nl = rest.find('\n');
    std::string_view raw = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++lineno;
    if (raw.find('\0') != std::string_view::npos) {
      return Fail(err, -EINVAL, "line " + std::to_string(lineno) + ": NUL byte");
    }
    std::string_view line = Trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      size_t close = line.find(']');
      std::string_view after = close == std::string_view::npos ? "" : Trim(line.substr(close + 1));
      if (close == std::string_view::npos || close == 1 ||
          !(after.empty() || after[0] == '#' || after[0] == ';')) {
        return Fail(err, -EINVAL, "line " + std::to_string(lineno) + ": malformed section header");
      }
      section = ToLower(Trim(line.substr(1, close - 1)));
      ini.sections_[section];
      continue;
    }
    size_t eq = line.find_first_of("=:");
    if (eq == std::string_view::npos || eq == 0) {
      return Fail(err, -EINVAL, "line " + std::to_string(lineno) + ": expected 'key = value'");
    }
    if (section.empty()) {
      return Fail(err, -EINVAL,
                  "line " + std::to_string(lineno) + ": setting outside of a [section]");
    }
    std::string key = ToLower(Trim(line.substr(0, eq)));
    std::string_view value = Trim(StripInlineComment(Trim(line.substr(eq + 1))));
    ini.sections_[section][key] = std::string(value);
  }
  *out = std::move(ini);
  return 0;
}

std::optional<std::string_view> IniFile::Get(std::string_view section, std::string_view key) const {
  auto s = sections_.find(ToLower(section));
  if (s == sections_.end()) return std::nullopt;
  auto k = s->second.find(ToLower(key));
  if (k == s->second.end()) return std::nullopt;
  return std::string_view(k->second);
}

std::string TrimUrl(std::string_view url) {
  // White space before a '/' too: what is left must read back the same.
  for (size_t n = 0; n != url.size();) {
    n = url.size();
    url = Trim(url);
    while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  }
  return std::string(url);
}

bool ParseKeyTimeout(std::string_view s, unsigned* out) {
  long n = 0;
  if (s == "0") {
    *out = 0;
  } else if (ParseSeconds(s, &n)) {
    *out = static_cast<unsigned>(n);
  } else {
    return false;
  }
  return true;
}

bool ParseTokenTimeout(std::string_view s, unsigned* out) {
  long n = 0;
  if (!ParseSeconds(s, &n) || n > static_cast<long>(kMaxTokenTimeoutS)) return false;
  *out = static_cast<unsigned>(n);
  return true;
}

std::string EndpointForRegion(std::string_view region) {
  return "https://" + std::string(region) + ".kms.cloud.ibm.com";
}

int ParseConfig(std::string_view text, const std::string& path, Config* out, std::string* err) {
  IniFile ini;
  std::string perr;
  if (int r = IniFile::Parse(text, &ini, &perr); r < 0) {
    return Fail(err, r, path + ": " + perr);
  }
  Config c;
  c.path = path;
  auto get = [&](std::string_view sec, std::string_view key) {
    return std::string(ini.Get(sec, key).value_or(""));
  };
  c.region = get("KP", "region");
  c.endpoint_url = TrimUrl(get("KP", "endpoint_url"));
  if (c.endpoint_url.empty() && !c.region.empty()) c.endpoint_url = EndpointForRegion(c.region);
  if (auto iam = TrimUrl(get("KP", "iam_endpoint_url")); !iam.empty()) c.iam_endpoint_url = iam;
  c.service_instance_id = get("KP", "service_instance_id");
  if (auto auth = ToLower(get("KP", "auth")); auth == "vpc") {
    c.auth = Auth::kVpc;
  } else if (!auth.empty() && auth != "api-key") {
    return Fail(err, -EINVAL, path + ": [KP] auth must be api-key or vpc");
  }
  c.trusted_profile.id = get("KP", "trusted_profile_id");
  c.trusted_profile.crn = get("KP", "trusted_profile_crn");
  if (!c.trusted_profile.id.empty() && !c.trusted_profile.crn.empty()) {
    return Fail(err, -EINVAL,
                path +
                    ": [KP] trusted_profile_id and trusted_profile_crn name the same thing: "
                    "set one of them");
  }
  if (auto md = TrimUrl(get("KP", "metadata_endpoint_url")); !md.empty()) {
    c.metadata_endpoint_url = md;
  }
  if (auto key = ini.Get("KP", "api_key"); key && !key->empty() && c.auth == Auth::kVpc) {
    c.api_key_ignored = true;  // not read: the instance's identity stands in for it
  } else if (key && !key->empty()) {
    if (*key == "TPM") {
      c.api_key_from_tpm = true;
    } else {
      c.api_key = Secret::FromString(*key);
    }
  }
  c.default_crk_uuid = get("KP", "default_crk_uuid");
  c.ca_file = get("KP", "ca_file");
  if (auto dir = get("HFL", "key_dir"); !dir.empty()) {
    c.key_dir = TrimUrl(dir);  // the same trimming: slashes and white space
    if (c.key_dir.empty()) c.key_dir = "/";
  }
  c.tpm_blob = get("HFL", "tpm_blob");
  if (c.tpm_blob.empty()) c.tpm_blob = c.key_dir + "/api-key-blob.txt";
  c.tpm2_tcti = get("HFL", "tpm2_tcti");
  if (!ParseBool(get("HFL", "initramfs_plain_api_key"), &c.initramfs_plain_api_key)) {
    return Fail(err, -EINVAL, path + ": [HFL] initramfs_plain_api_key must be yes or no");
  }
  if (!ParseBool(get("HFL", "allow_boot_endpoints"), &c.allow_boot_endpoints)) {
    return Fail(err, -EINVAL, path + ": [HFL] allow_boot_endpoints must be yes or no");
  }
  if (auto v = get("HFL", "tpm_lock"); !v.empty() && !ParseBool(v, &c.tpm_lock)) {
    return Fail(err, -EINVAL, path + ": [HFL] tpm_lock must be yes or no");
  }
  if (auto v = get("HFL", "update_wrapped_keys");
      !v.empty() && !ParseBool(v, &c.update_wrapped_keys)) {
    return Fail(err, -EINVAL, path + ": [HFL] update_wrapped_keys must be yes or no");
  }
  if (auto v = get("HFL", "key_timeout"); !v.empty() && !ParseKeyTimeout(v, &c.key_timeout_s)) {
    return Fail(err, -EINVAL,
                path + ": [HFL] key_timeout must be 0 (no timeout) or " + kSecondsRange);
  }
  if (auto v = get("HFL", "token_timeout");
      !v.empty() && !ParseTokenTimeout(v, &c.token_timeout_s)) {
    return Fail(err, -EINVAL,
                path + ": [HFL] token_timeout must be a number of seconds from 1 to " +
                    std::to_string(kMaxTokenTimeoutS));
  }
  *out = std::move(c);
  return 0;
}

int LoadConfig(const std::string& path, Config* out, std::string* err) {
  std::string text;
  struct stat st {};
  // It names the endpoints the API key is sent to: only root may change it.
  if (int r = ReadTrustedFile(path, kMaxConfigSize, Follow::kYes, &text, &st, err); r < 0) return r;
  // The file may hold the API key: parse from a buffer we wipe afterwards.
  Secret wipe_later = Secret::FromString(text);
  Wipe(text.data(), text.size());
  if (int r = ParseConfig(wipe_later.view(), path, out, err); r < 0) return r;
  out->api_key_exposed = !out->api_key.empty() && (st.st_mode & 0044) != 0;
  return 0;
}

std::optional<std::string> ConfigValue(const Config& c, std::string_view name) {
  auto yes_no = [](bool b) { return std::string(b ? "yes" : "no"); };
  if (name == "auth") return std::string(c.auth == Auth::kVpc ? "vpc" : "api-key");
  if (name == "trusted_profile_id") return c.trusted_profile.id;
  if (name == "trusted_profile_crn") return c.trusted_profile.crn;
  if (name == "metadata_endpoint_url") return c.metadata_endpoint_url;
  if (name == "region") return c.region;
  if (name == "endpoint_url") return c.endpoint_url;
  if (name == "iam_endpoint_url") return c.iam_endpoint_url;
  if (name == "service_instance_id") return c.service_instance_id;
  if (name == "api_key_source") {
    if (c.auth == Auth::kVpc) return std::string("vpc");
    return std::string(c.api_key_from_tpm ? "tpm" : c.api_key.empty() ? "none" : "literal");
  }
  if (name == "default_crk_uuid") return c.default_crk_uuid;
  if (name == "ca_file") return c.ca_file;
  if (name == "key_dir") return c.key_dir;
  if (name == "tpm_blob") return c.tpm_blob;
  if (name == "tpm2_tcti") return c.tpm2_tcti;
  if (name == "initramfs_plain_api_key") return yes_no(c.initramfs_plain_api_key);
  if (name == "allow_boot_endpoints") return yes_no(c.allow_boot_endpoints);
  if (name == "update_wrapped_keys") return yes_no(c.update_wrapped_keys);
  if (name == "tpm_lock") return yes_no(c.tpm_lock);
  if (name == "key_timeout") return std::to_string(c.key_timeout_s);
  if (name == "token_timeout") return std::to_string(c.token_timeout_s);
  return std::nullopt;
}

std::string FormatConfig(const Config& c, bool with_api_key) {
  std::string s = "[KP]\n";
  auto line = [&](const char* name) {
    s.append(name).append(" = ").append(*ConfigValue(c, name)).push_back('\n');
  };
  for (const char* n :
       {"auth", "region", "endpoint_url", "iam_endpoint_url", "service_instance_id"}) {
    line(n);
  }
  // Written whatever auth says, so that the file reads back the same.
  for (const char* n : {"trusted_profile_id", "trusted_profile_crn", "metadata_endpoint_url"}) {
    line(n);
  }
  if (c.auth == Auth::kVpc) {
    // No API key, not even one left in the file.
  } else if (c.api_key_from_tpm) {
    s += "api_key = TPM\n";
  } else if (!c.api_key.empty() && with_api_key) {
    s.append("api_key = ").append(c.api_key.view()).push_back('\n');
  } else if (!c.api_key.empty()) {
    s += "; api_key: left out (a literal key)\n";
  }
  line("default_crk_uuid");
  line("ca_file");
  s += "\n[HFL]\n";
  for (const char* n :
       {"key_dir", "tpm_blob", "tpm2_tcti", "initramfs_plain_api_key", "allow_boot_endpoints",
        "update_wrapped_keys", "tpm_lock", "key_timeout", "token_timeout"}) {
    line(n);
  }
  return s;
}

int CheckKmsSettings(const Config& c, std::string* err) {
  std::vector<std::string> missing;
  if (c.endpoint_url.empty()) missing.push_back("[KP] region or endpoint_url");
  if (c.service_instance_id.empty()) missing.push_back("[KP] service_instance_id");
  const bool vpc = c.auth == Auth::kVpc;
  if (!vpc && c.api_key.empty() && !c.api_key_from_tpm) {
    missing.push_back("[KP] api_key (or auth = vpc on an IBM Cloud VPC instance)");
  }
  if (!vpc && c.iam_endpoint_url.empty()) missing.push_back("[KP] iam_endpoint_url");
  if (missing.empty()) {
    for (const std::string* url : {&c.endpoint_url, &c.iam_endpoint_url}) {
      if (vpc && url == &c.iam_endpoint_url) continue;  // not used
      HttpsUrl u;
      if (int r = ParseHttpsUrl(*url, &u, err); r < 0) return WithContext(err, r, c.path + ": ");
    }
    if (vpc) {
      if (int r = CheckMetadataUrl(c.metadata_endpoint_url, err); r < 0) {
        return WithContext(err, r, c.path + ": [KP] metadata_endpoint_url: ");
      }
    }
    return 0;
  }
  return Fail(err, -EINVAL, c.path + ": missing or empty: " + Join(missing, ", "));
}

}  // namespace hpcs
