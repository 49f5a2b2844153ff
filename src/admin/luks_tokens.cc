#include "admin/luks_tokens.h"

#include <cerrno>

#include "admin/luks.h"
#include "admin/subprocess.h"
#include "base/strutil.h"
#include "core/token_open.h"

namespace hpcs {

std::vector<VolumeToken> HpcsTokensOf(const LuksHeader& h, std::vector<std::string>* bad) {
  std::vector<VolumeToken> out;
  for (const auto& t : h.tokens) {
    if (t.type != kHpcsTokenType) continue;
    VolumeToken v;
    v.id = t.id;
    std::string err;
    if (ParseHpcsToken(t.json, &v.token, &err) < 0) {
      if (bad) bad->push_back("token " + std::to_string(t.id) + ": " + err);
      continue;
    }
    out.push_back(std::move(v));
  }
  return out;
}

int ReadLuksUuid(const std::string& device, std::string* uuid, std::string* err) {
  ProcessResult r;
  if (int rc = RunProcess({"cryptsetup", "luksUUID", "--", device}, {}, &r, err); rc < 0) return rc;
  std::string_view u = Trim(r.out);
  if (r.exit_status != 0 || u.empty()) {
    if (err) *err = "cryptsetup luksUUID '" + device + "': " + DescribeProcessFailure(r);
    return -EIO;
  }
  uuid->clear();
  for (char c : u) uuid->push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  return 0;
}

int ImportLuksToken(const std::string& device, int id, std::string_view json, bool replace,
                    std::string* err) {
  std::vector<std::string> argv = {"cryptsetup", "token",      "import",          "--json-file",
                                   "-",          "--token-id", std::to_string(id)};
  if (replace) argv.push_back("--token-replace");
  argv.insert(argv.end(), {"--", device});
  Secret in = Secret::FromString(json);
  ProcessOptions o;
  o.stdin_data = &in;
  ProcessResult r;
  if (int rc = RunProcess(argv, o, &r, err); rc < 0) return rc;
  if (r.exit_status != 0) {
    if (err) {
      *err = "cryptsetup token import --token-id " + std::to_string(id) + " '" + device +
             "': " + DescribeProcessFailure(r);
    }
    return -EIO;
  }
  return 0;
}

int OpenDeviceToken(KpClient& kp, const Config& c, const std::string& device, int token_id,
                    Secret* passphrase, std::string* key_version, std::string* err) {
  LuksHeader h;
  if (int rc = ReadLuksHeader(device, &h, err); rc < 0) return rc;
  std::vector<std::string> bad;
  std::vector<VolumeToken> tokens = HpcsTokensOf(h, &bad);
  const VolumeToken* t = nullptr;
  if (token_id >= 0) {
    for (const auto& v : tokens) {
      if (v.id == token_id) t = &v;
    }
  } else if (tokens.size() > 1) {
    if (err) {
      *err = "'" + device + "' has " + std::to_string(tokens.size()) +
             " hpcs tokens; give one with --token-id";
    }
    return -ENOTUNIQ;
  } else if (!tokens.empty()) {
    t = &tokens[0];
  }
  if (!t) {
    std::string why = bad.empty() ? "" : " (" + Join(bad, "; ") + ")";
    if (err) {
      *err =
          "'" + device + "' has no" +
          (token_id < 0 ? std::string(" hpcs token") : " hpcs token " + std::to_string(token_id)) +
          why;
    }
    return bad.empty() ? -ENOENT : -EINVAL;
  }
  std::string uuid;
  if (int rc = ReadLuksUuid(device, &uuid, err); rc < 0) return rc;
  std::string e;
  if (int rc = OpenHpcsToken(kp, c, t->token, uuid, passphrase, key_version, &e); rc < 0) {
    if (err) {
      *err = "hpcs token " + std::to_string(t->id) + " of '" + device + "' (LUKS UUID " + uuid +
             ", root key '" + t->token.crk + "'): " + e;
    }
    return rc;
  }
  return 0;
}

}  // namespace hpcs
