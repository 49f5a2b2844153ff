// report: the crypttab's LUKS2 volumes, and for each wrapped key the key
// slots its luks2-keyring token unlocks, tried with the unwrapped key
// (`cryptsetup open --test-passphrase`, no device-mapper needed).
#include <cerrno>

#include "admin/report_checks.h"
#include "base/fileio.h"

namespace hpcs {

namespace {

std::string VolumeName(const ReportVolume& v) {
  return "'" + v.device + "' (crypttab '" + v.entry.name + "')";
}

std::string SlotList(const std::vector<int>& slots) {
  std::string s;
  for (int i : slots) s += (s.empty() ? "" : ", ") + std::to_string(i);
  return s;
}

bool HasStoredUserKey(const ReportContext& ctx, const std::string& desc) {
  for (const auto& k : ctx.stored) {
    if (k.type == KeyType::kUser && k.desc == desc) return true;
  }
  return false;
}

}  // namespace

void ReadVolumes(ReportContext& ctx) {
  Report& r = ctx.report;
  const std::string& path = ctx.options.crypttab;
  std::string text, err;
  if (int rc = ReadRegularFile(path, 1024 * 1024, &text, nullptr, &err); rc < 0) {
    r.Add("volume", path, rc == -ENOENT ? Level::kInfo : Level::kWarn,
          "cannot read the crypttab: " + err + "; the volumes of the keys are not known");
    return;
  }
  ctx.crypttab_read = true;
  for (auto& e : ParseCrypttab(text)) {
    ReportVolume v;
    v.device = CrypttabSourcePath(e.source);
    int rc = ReadLuksHeader(v.device, &v.header, &err);
    if (rc == -EMEDIUMTYPE) continue;  // plain dm-crypt, LUKS1, swap: no tokens to check
    if (rc < 0) {
      bool optional = e.Has("nofail") || e.Has("noauto");
      r.Add("volume", path + ":" + std::to_string(e.line), optional ? Level::kInfo : Level::kWarn,
            "'" + e.name + "': " + err);
      continue;
    }
    v.entry = std::move(e);
    ctx.volumes.push_back(std::move(v));
  }
}

namespace {

// One key on one volume's token: the key slots it names open with the key.
KeyFacts::Volume CheckToken(ReportContext& ctx, const StoredKey& k, const ReportVolume& v,
                            const LuksToken& t) {
  Report& r = ctx.report;
  KeyFacts::Volume fv;
  fv.name = v.entry.name;
  fv.device = v.device;
  fv.netdev = v.entry.Has("_netdev");
  fv.keyslots = t.keyslots;
  if (v.entry.key != "none" && v.entry.key != "-") {
    r.Add("volume", KeyLabel(k), Level::kWarn,
          VolumeName(v) + " names a key file ('" + v.entry.key +
              "'): systemd-cryptsetup then never tries the token",
          "set the third field of crypttab line " + std::to_string(v.entry.line) + " to none");
  }
  auto pt = ctx.plaintext.find(KeyLabel(k));
  if (pt == ctx.plaintext.end()) return fv;  // did not unwrap: said above
  std::vector<int> closed;
  std::string err;
  bool tried = true;
  for (int slot : t.keyslots) {
    int rc = TestLuksPassphrase(v.device, slot, pt->second, &err);
    if (rc < 0) tried = false;
    if (rc == 0) closed.push_back(slot);
  }
  std::string reenrol = "enrol again: hpcs-enroll --remove '" + v.device + "' " + v.entry.name +
                        "; hpcs-enroll '" + v.device + "' " + v.entry.name;
  if (!tried) {
    r.Add("volume", KeyLabel(k), Level::kWarn,
          "cannot try the key on " + VolumeName(v) + ": " + err);
  } else if (t.keyslots.empty()) {
    fv.opens = false;
    r.Add("volume", KeyLabel(k), Level::kFail,
          VolumeName(v) + ": token " + std::to_string(t.id) + " names no key slot", reenrol);
  } else if (!closed.empty()) {
    fv.opens = false;
    r.Add("volume", KeyLabel(k), Level::kFail,
          "key slot " + SlotList(closed) + " of " + VolumeName(v) +
              " does not open with this key: it will ask for a passphrase at boot",
          reenrol);
  } else {
    fv.opens = true;
    r.Add("volume", KeyLabel(k), Level::kOk,
          "opens key slot " + SlotList(t.keyslots) + " of " + VolumeName(v) +
              (fv.netdev ? ", after the network is up (_netdev)" : ""));
  }
  return fv;
}

// Tokens that name a user key with no wrapped-key file.
void CheckOrphanTokens(ReportContext& ctx) {
  for (const auto& v : ctx.volumes) {
    for (const auto& t : v.header.tokens) {
      if (t.type != "luks2-keyring" || HasStoredUserKey(ctx, t.key_description)) continue;
      ctx.report.Add("volume", v.device, Level::kWarn,
                     VolumeName(v) + " has a luks2-keyring token for '" + t.key_description +
                         "' but there is no wrapped key 'user/" + t.key_description +
                         "': it asks for a passphrase at boot",
                     "enrol it again, or remove the token: cryptsetup token remove --token-id " +
                         std::to_string(t.id) + " '" + v.device + "'");
    }
  }
}

}  // namespace

void CheckVolumes(ReportContext& ctx) {
  Report& r = ctx.report;
  for (const auto& k : ctx.stored) {
    KeyFacts& f = r.keys[ctx.key_index[KeyLabel(k)]];
    if (k.type == KeyType::kLogon) {
      r.Add(
          "volume", KeyLabel(k), Level::kInfo,
          "a dm-crypt (logon) key: its table is not in the crypttab, so its volume is not checked");
      continue;
    }
    for (const auto& v : ctx.volumes) {
      for (const LuksToken* t : v.header.KeyringTokens(k.desc)) {
        f.volumes.push_back(CheckToken(ctx, k, v, *t));
      }
    }
    if (f.volumes.empty() && ctx.crypttab_read) {
      r.Add("volume", KeyLabel(k), Level::kInfo,
            "no LUKS2 volume in '" + ctx.options.crypttab + "' has a luks2-keyring token for it");
    }
  }
  CheckOrphanTokens(ctx);
}

}  // namespace hpcs
