// report: the hpcs LUKS2 tokens (core/hpcs_token.h) of the crypttab's
// volumes and of each --device: the token unwraps, bound to its volume's
// LUKS UUID (a token copied into another header does not), with the newest
// version of the root key; it names the config's instance; and each of its
// key slots opens with the passphrase (`cryptsetup open --test-passphrase`,
// the passphrase on a pipe, no device-mapper needed).
#include <cerrno>

#include "admin/luks_tokens.h"
#include "admin/report_checks.h"
#include "core/token_open.h"

namespace hpcs {

namespace {

std::string Where(const ReportVolume& v) {
  return "'" + v.device + "'" + (v.entry.name.empty() ? "" : " (crypttab '" + v.entry.name + "')");
}

std::string SlotList(const std::vector<int>& slots) {
  std::string s;
  for (int i : slots) s += (s.empty() ? "" : ", ") + std::to_string(i);
  return s;
}

// The remedy for a token that cannot be used: enrol the volume again.
std::string Reenrol(const ReportVolume& v, const HpcsToken& t) {
  std::string name = v.entry.name.empty() ? "NAME" : v.entry.name;
  return "enrol it again: hpcs-enroll --remove" +
         (t.name.empty() ? "" : " --name '" + t.name + "'") + " '" + v.device + "' " + name +
         "; hpcs-enroll --token '" + v.device + "' " + name;
}

// The token's passphrase opens each of its key slots.
void CheckSlots(ReportContext& ctx, const ReportVolume& v, const VolumeToken& vt,
                const Secret& pass, TokenFacts* f) {
  Report& r = ctx.report;
  const std::string subject = v.device;
  const std::string what = "hpcs token " + std::to_string(vt.id) + " of " + Where(v);
  std::vector<int> closed;
  std::string err;
  for (int slot : vt.token.keyslots) {
    int rc = TestLuksPassphrase(v.device, slot, pass, &err);
    if (rc < 0) {
      r.Add("token", subject, Level::kWarn, "cannot try " + what + " on its key slots: " + err);
      return;
    }
    if (rc == 0) closed.push_back(slot);
  }
  f->opens = closed.empty();
  if (!closed.empty()) {
    r.Add("token", subject, Level::kFail,
          "key slot " + SlotList(closed) + " does not open with the passphrase of " + what +
              ": it will ask for a passphrase at boot",
          Reenrol(v, vt.token));
    return;
  }
  std::string version = f->key_version.empty() ? "" : ", key version " + f->key_version;
  r.Add("token", subject, Level::kOk,
        what + " opens key slot " + SlotList(vt.token.keyslots) + " (root key '" + vt.token.crk +
            "'" + version + ")");
}

void CheckToken(ReportContext& ctx, const ReportVolume& v, const std::string& uuid,
                const VolumeToken& vt) {
  Report& r = ctx.report;
  const HpcsToken& t = vt.token;
  TokenFacts f;
  f.device = v.device;
  f.name = v.entry.name;
  f.token_id = vt.id;
  f.keyslots = t.keyslots;
  f.crk = t.crk;
  f.instance = t.instance;
  const std::string what = "hpcs token " + std::to_string(vt.id) + " of " + Where(v);
  if (!ctx.kms.client) {
    r.Add("token", v.device, Level::kFail,
          what + ": not checked: the KMS cannot be used (see above)");
    r.tokens.push_back(std::move(f));
    return;
  }
  Secret pass;
  std::string kv, err;
  int rc = OpenHpcsToken(*ctx.kms.client, ctx.config, t, uuid, &pass, &kv, &err);
  if (rc == -EXDEV) {
    f.unwraps = false;
    r.Add("token", v.device, Level::kFail, what + " was made with another instance: " + err,
          "this machine's unlock uses the config's instance: " + Reenrol(v, t));
  } else if (rc < 0) {
    f.unwraps = false;
    r.Add("token", v.device, Level::kFail,
          what + " does not unwrap with the volume's LUKS UUID " + uuid + " as AAD: " + err,
          "a token copied from another volume's header (or a volume whose UUID changed) never "
          "opens this one: " +
              Reenrol(v, t));
  } else {
    f.unwraps = true;
    f.key_version = kv;
    if (t.crk != ctx.config.default_crk_uuid) {
      r.Add("token", v.device, Level::kWarn,
            what + " is wrapped by root key '" + t.crk + "', not by default_crk_uuid '" +
                ctx.config.default_crk_uuid + "'",
            "it opens for as long as root key '" + t.crk +
                "' exists; to bring it under default_crk_uuid, " + Reenrol(v, t));
    } else if (ctx.root_key && !kv.empty()) {
      f.current = kv == ctx.root_key->key_version;
      if (!*f.current) {
        r.Add("token", v.device, Level::kWarn,
              what + " is wrapped with an older key version (" + kv + ", newest " +
                  ctx.root_key->key_version + ")",
              "hpcs-for-luks rewrap");
      }
    }
    CheckSlots(ctx, v, vt, pass, &f);
  }
  r.tokens.push_back(std::move(f));
}

void CheckVolumeTokens(ReportContext& ctx, const ReportVolume& v) {
  std::vector<std::string> bad;
  std::vector<VolumeToken> tokens = HpcsTokensOf(v.header, &bad);
  for (const auto& b : bad) {
    ctx.report.Add("token", v.device, Level::kFail,
                   Where(v) + " has an hpcs token that is not valid: " + b,
                   "remove it (cryptsetup token remove --token-id N '" + v.device +
                       "') and enrol again: hpcs-enroll --token '" + v.device + "'");
  }
  if (tokens.empty()) return;
  std::string uuid, err;
  if (ReadLuksUuid(v.device, &uuid, &err) < 0) {
    ctx.report.Add("token", v.device, Level::kWarn, "cannot check its hpcs tokens: " + err);
    return;
  }
  for (const auto& t : tokens) CheckToken(ctx, v, uuid, t);
}

}  // namespace

void ReadDevices(ReportContext& ctx) {
  for (const auto& d : ctx.options.devices) {
    bool listed = false;
    for (const auto& v : ctx.volumes) listed = listed || v.device == d;
    if (listed) continue;  // checked as a crypttab volume
    ReportVolume v;
    v.device = d;
    std::string err;
    if (ReadLuksHeader(d, &v.header, &err) < 0) {
      ctx.report.Add("token", d, Level::kFail, err);
      continue;
    }
    ctx.devices.push_back(std::move(v));
  }
}

void CheckTokens(ReportContext& ctx) {
  for (const auto& v : ctx.volumes) CheckVolumeTokens(ctx, v);
  for (const auto& v : ctx.devices) CheckVolumeTokens(ctx, v);
  if (!ctx.stored.empty() || ctx.report.tokens.empty()) return;
  // Without wrapped keys something still unlocks at boot: the tokens.
  for (auto& f : ctx.report.findings) {
    if (f.check == "config" && f.subject == ctx.config.key_dir &&
        f.message.starts_with("no wrapped keys")) {
      f.message = "no wrapped keys under '" + ctx.config.key_dir +
                  "/{logon,user}': the volumes open with their hpcs tokens";
    }
  }
}

}  // namespace hpcs
