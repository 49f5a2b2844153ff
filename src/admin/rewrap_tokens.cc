#include "admin/rewrap_tokens.h"

#include <algorithm>
#include <cerrno>

#include "admin/luks.h"
#include "admin/luks_tokens.h"
#include "base/fileio.h"
#include "core/crypttab.h"
#include "core/token_open.h"

namespace hpcs {

namespace {

constexpr size_t kMaxCrypttab = 1024 * 1024;

// The devices to look at: the crypttab's, then the plan's, each once.
std::vector<std::string> Devices(const TokenRewrapPlan& plan, std::vector<std::string>* unread) {
  std::vector<std::string> out;
  std::string text, err;
  if (int rc = ReadRegularFile(plan.crypttab, kMaxCrypttab, &text, nullptr, &err); rc < 0) {
    if (rc != -ENOENT) unread->push_back("'" + plan.crypttab + "': " + err);
  } else {
    for (const auto& e : ParseCrypttab(text)) out.push_back(CrypttabSourcePath(e.source));
  }
  for (const auto& d : plan.devices) out.push_back(d);
  std::vector<std::string> once;
  for (auto& d : out) {
    if (std::find(once.begin(), once.end(), d) == once.end()) once.push_back(d);
  }
  return once;
}

bool Given(const TokenRewrapPlan& plan, const std::string& device) {
  return std::find(plan.devices.begin(), plan.devices.end(), device) != plan.devices.end();
}

TokenRewrap Prepare(const TokenRewrapPlan& plan, const std::string& device, const std::string& uuid,
                    const VolumeToken& vt) {
  TokenRewrap o;
  o.device = device;
  o.id = vt.id;
  o.old_token = vt.token;
  const std::string what = "hpcs token " + std::to_string(vt.id) + " of '" + device + "'";
  if (!plan.from_crk.empty() && vt.token.crk != plan.from_crk) {
    o.skipped = true;
    return o;
  }
  Secret pass;
  std::string err;
  if (int rc =
          OpenHpcsToken(*plan.from, *plan.from_config, vt.token, uuid, &pass, &o.old_version, &err);
      rc < 0) {
    o.result = rc;
    o.error = "Failed to unwrap " + what + " (root key '" + vt.token.crk + "'): " + err;
    return o;
  }
  const std::string& crk = plan.to_crk.empty() ? vt.token.crk : plan.to_crk;
  if (int rc = WrapHpcsToken(*plan.to, *plan.to_config, crk, uuid, pass, vt.token.keyslots,
                             vt.token.name, &o.new_token, &err);
      rc < 0) {
    o.result = rc;
    o.error = "Failed to wrap " + what + " anew with root key '" + crk + "': " + err;
    return o;
  }
  o.changed = o.new_token.crk != vt.token.crk || o.new_token.instance != vt.token.instance ||
              o.new_token.key_version != o.old_version || o.old_version.empty();
  return o;
}

}  // namespace

void PrepareTokenRewraps(const TokenRewrapPlan& plan, std::vector<TokenRewrap>* out,
                         std::vector<std::string>* unread) {
  for (const auto& device : Devices(plan, unread)) {
    LuksHeader h;
    std::string err;
    int rc = ReadLuksHeader(device, &h, &err);
    if (rc == -EMEDIUMTYPE && !Given(plan, device)) continue;  // not LUKS2: no tokens
    if (rc < 0) {
      if (!Given(plan, device)) {
        unread->push_back(err);
        continue;
      }
      TokenRewrap o;
      o.device = device;
      o.result = rc;
      o.error = "Failed to read the LUKS2 header: " + err;
      out->push_back(std::move(o));
      continue;
    }
    std::vector<std::string> bad;
    std::vector<VolumeToken> tokens = HpcsTokensOf(h, &bad);
    for (const auto& b : bad) unread->push_back("'" + device + "': " + b);
    if (tokens.empty()) continue;
    std::string uuid;
    if (int r = ReadLuksUuid(device, &uuid, &err); r < 0) {
      TokenRewrap o;
      o.device = device;
      o.result = r;
      o.error = err;
      out->push_back(std::move(o));
      continue;
    }
    for (const auto& vt : tokens) out->push_back(Prepare(plan, device, uuid, vt));
  }
}

void WriteTokenRewraps(std::vector<TokenRewrap>* rewraps) {
  for (auto& o : *rewraps) {
    if (o.result < 0 || o.skipped || !o.changed) continue;
    std::string err;
    if (int rc = ImportLuksToken(o.device, o.id, FormatHpcsToken(o.new_token), true, &err);
        rc < 0) {
      o.result = rc;
      o.error = "Failed to replace hpcs token " + std::to_string(o.id) + " of '" + o.device +
                "' (the old one is as it was): " + err;
      continue;
    }
    o.written = true;
  }
}

}  // namespace hpcs
