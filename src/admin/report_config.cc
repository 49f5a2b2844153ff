// report: the config file and the key directory, without the network.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include "admin/report_checks.h"

namespace hpcs {

namespace {

std::string Octal(mode_t m) {
  char buf[8];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// A file that should be 0600: a warning when group or others may read it.
void CheckPrivate(Report& r, const char* check, const std::string& path, const char* what) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return;
  if (st.st_mode & 077) {
    r.Add(check, path, Level::kWarn,
          std::string(what) + " is readable by group or others (mode " + Octal(st.st_mode) + ")",
          "chmod 600 '" + path + "'");
  }
}

}  // namespace

void CheckConfig(ReportContext& ctx) {
  const Config& c = ctx.config;
  Report& r = ctx.report;
  std::string err;
  bool ok = true;
  if (CheckKmsSettings(c, &err) < 0) {
    r.Add("config", c.path, Level::kFail, err, "set the values in '" + c.path + "'");
    ok = false;
  }
  if (c.default_crk_uuid.empty()) {
    r.Add("config", c.path, Level::kFail, "no root key: [KP] default_crk_uuid is empty",
          "set default_crk_uuid in [KP] of '" + c.path + "' (hpcs-for-luks list shows the keys)");
    ok = false;
  }
  if (!c.api_key.empty()) CheckPrivate(r, "config", c.path, "the config holds the API key and");
  if (c.api_key_from_tpm) {
    struct stat st;
    if (stat(c.tpm_blob.c_str(), &st) != 0) {
      r.Add("config", c.tpm_blob, Level::kFail, "api_key = TPM but there is no sealed API key",
            "hpcs-for-luks seal-api-key < api-key.txt");
      ok = false;
    } else {
      CheckPrivate(r, "config", c.tpm_blob, "the sealed API key");
    }
  }
  if (c.api_key_ignored) {
    r.Add("config", c.path, Level::kWarn,
          "auth = vpc, but the file still holds an api_key, which is not used: a secret left on "
          "the disk for nothing",
          "remove the api_key line from '" + c.path +
              "' (and revoke that API key in IAM if "
              "nothing else uses it)");
    CheckPrivate(r, "config", c.path, "the config holds an (unused) API key and");
  }
  if (ok) {
    r.Add("config", c.path, Level::kOk,
          c.auth == Auth::kVpc
              ? "settings complete; no API key: auth = vpc, " + DescribeProfile(c.trusted_profile) +
                    " from the metadata service at " + c.metadata_endpoint_url
              : std::string("settings complete; API key ") +
                    (c.api_key_from_tpm ? "sealed to the TPM" : "in the config"));
  }

  std::vector<std::string> skipped;
  if (ListStoredKeys(c.key_dir, &ctx.stored, &skipped, &err) < 0) {
    r.Add("config", c.key_dir, Level::kFail, "cannot read the key directory: " + err,
          "check [HFL] key_dir in '" + c.path + "'");
    return;
  }
  for (const auto& s : skipped) {
    r.Add("config", s, Level::kInfo, "not a wrapped key: skipped at boot");
  }
  if (ctx.stored.empty()) {
    r.Add("config", c.key_dir, Level::kInfo,
          "no wrapped keys under '" + c.key_dir + "/{logon,user}': nothing is unlocked at boot");
  }
  for (const auto& k : ctx.stored) {
    KeyFacts f;
    f.type = KeyTypeName(k.type);
    f.description = k.desc;
    f.path = k.path;
    ctx.key_index[KeyLabel(k)] = r.keys.size();
    r.keys.push_back(std::move(f));
    std::string why;
    if (!ValidDescription(k.type, k.desc, &why)) {
      r.Add("key", KeyLabel(k), Level::kFail, "'" + k.path + "': " + why,
            "rename the file to a valid key description");
    }
    CheckPrivate(r, "key", k.path, "the wrapped key");
  }
}

}  // namespace hpcs
