// report: the initramfs of the running and of the newest installed kernel
// (or the images given with --initramfs) carry hpcs-unlock, the same config
// and the same wrapped keys as the host: no drift since the last dracut run.
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "admin/initramfs.h"
#include "admin/report_checks.h"
#include "base/fileio.h"
#include "base/strutil.h"

namespace hpcs {

namespace {

constexpr size_t kMaxRefusedShown = 5;

std::string Rebuild(const InitramfsFacts& f) {
  return "dracut --force '" + f.path + "'" + (f.kernel.empty() ? "" : " " + f.kernel);
}

// A key the initramfs must load: a dm-crypt key (its use is unknown), or a
// LUKS passphrase of a volume not known to be opened after the network
// (_netdev volumes are opened from the real root).
bool NeededEarly(const ReportContext& ctx, const std::string& name) {
  auto it = ctx.key_index.find(name);
  if (it == ctx.key_index.end()) return true;
  const KeyFacts& f = ctx.report.keys[it->second];
  if (f.volumes.empty()) return true;
  for (const auto& v : f.volumes) {
    if (!v.netdev) return true;
  }
  return false;
}

std::string Quoted(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "'" : ", '") + x + "'";
  return s;
}

// Unwraps the image's differing ciphertexts: which still give the host's key.
std::vector<bool> SameKeys(ReportContext& ctx, const InitramfsContents& c,
                           const std::vector<std::string>& names) {
  std::vector<bool> same(names.size(), false);
  if (!ctx.kms.client) return same;
  std::vector<KpCall> calls;
  for (const auto& n : names) {
    calls.push_back(KpClient::MakeUnwrapCall(ctx.config.default_crk_uuid, c.keys.at(n)));
  }
  std::vector<KpCall*> batch;
  for (auto& call : calls) batch.push_back(&call);
  ctx.kms.client->Run(batch, [&](KpCall& call) {
    size_t i = static_cast<size_t>(&call - calls.data());
    UnwrapDetails d;
    auto host = ctx.plaintext.find(names[i]);
    same[i] = ParseUnwrapDetails(call, &d, nullptr) == 0 && host != ctx.plaintext.end() &&
              d.plaintext.Equals(host->second);
    call.response.Clear();
  });
  return same;
}

// The image's config against the host's (and the sealed API key). Returns
// the number of problems found.
int CheckImageConfig(ReportContext& ctx, const InitramfsContents& c, InitramfsFacts& f) {
  const Config& host = ctx.config;
  Config image;
  std::string err;
  if (!c.config ||
      ParseConfig(c.config->view(), f.path + ":/etc/hpcs-for-luks.ini", &image, &err) < 0) {
    f.config_matches = false;
    ctx.report.Add("initramfs", f.path, Level::kFail,
                   c.config ? "its config does not parse: " + err : "has hpcs-unlock but no config",
                   Rebuild(f));
    return 1;
  }
  auto diffs = ConfigDifferences(host, image);
  if (host.api_key_from_tpm && (!ctx.tpm_blob || !c.tpm_blob || *c.tpm_blob != *ctx.tpm_blob)) {
    diffs.push_back("the sealed API key (" + host.tpm_blob + ")");
  }
  f.config_matches = diffs.empty();
  if (diffs.empty()) return 0;
  ctx.report.Add("initramfs", f.path, Level::kFail,
                 "its config differs from '" + host.path + "' in " + Join(diffs, ", "), Rebuild(f));
  return 1;
}

// The image's wrapped keys against the key directory. Returns the number of
// problems found.
int CheckImageKeys(ReportContext& ctx, const std::map<std::string, std::string>& host_keys,
                   const InitramfsContents& c, InitramfsFacts& f) {
  Report& r = ctx.report;
  int problems = 0;
  for (const auto& [name, ct] : host_keys) {
    auto it = c.keys.find(name);
    if (it == c.keys.end()) {
      f.keys_missing.push_back(name);
    } else if (it->second != ct) {
      f.keys_differ.push_back(name);
    }
  }
  for (const auto& [name, ct] : c.keys) {
    if (!host_keys.count(name)) f.keys_removed.push_back(name);
  }
  for (const auto& name : f.keys_missing) {
    bool needed = NeededEarly(ctx, name);
    problems += needed;
    r.Add("initramfs", f.path, needed ? Level::kFail : Level::kInfo,
          "lacks '" + name + "' (added after the image was built)" +
              (needed ? ": its volume asks for a passphrase at boot"
                      : "; its volume is _netdev and opens from the real root"),
          needed ? Rebuild(f) : "");
  }
  if (!f.keys_removed.empty()) {
    ++problems;
    r.Add("initramfs", f.path, Level::kWarn,
          "still carries " + Quoted(f.keys_removed) + ", removed from the key directory since",
          Rebuild(f));
  }
  if (f.keys_differ.empty()) return problems;
  auto same = SameKeys(ctx, c, f.keys_differ);
  for (size_t i = 0; i < same.size(); ++i) {
    if (same[i]) {
      r.Add("initramfs", f.path, Level::kInfo,
            "carries an older wrapping of '" + f.keys_differ[i] +
                "' (after a rotation or rewrap) that still unwraps to the same key",
            Rebuild(f) + " to carry the current one");
    } else {
      ++problems;
      r.Add("initramfs", f.path, Level::kFail,
            "carries another '" + f.keys_differ[i] +
                "' that does not unwrap to the current key: its volume asks for a passphrase",
            Rebuild(f));
    }
  }
  return problems;
}

// Members under our key directory that were not read (a dracut run never
// writes such names: it copies flat key directories), shown as listed.
// Returns the number of problems found.
int CheckRefusedMembers(ReportContext& ctx, const InitramfsContents& c, InitramfsFacts& f) {
  if (c.refused.empty()) return 0;
  std::vector<std::string> shown;
  for (size_t i = 0; i < c.refused.size() && i < kMaxRefusedShown; ++i) {
    shown.push_back(Printable(c.refused[i], 200));
  }
  std::string more = c.refused.size() > kMaxRefusedShown
                         ? " and " + std::to_string(c.refused.size() - kMaxRefusedShown) + " more"
                         : "";
  ctx.report.Add("initramfs", f.path, Level::kWarn,
                 "carries " + Quoted(shown) + more +
                     ", not read: outside var/lib/hpcs-for-luks/{logon,user}/<name>",
                 Rebuild(f));
  return 1;
}

// An image that carries our files must not be readable by others: dracut
// writes a new image 0600, but `dracut --force` over an existing one (made by
// initramfs-tools, say, 0644) keeps its mode. Returns the number of problems.
int CheckImageMode(ReportContext& ctx, const InitramfsContents& c, InitramfsFacts& f) {
  struct stat st;
  if (stat(f.path.c_str(), &st) != 0 || (st.st_mode & 0044) == 0) return 0;
  Config image;
  bool api_key = c.config && ParseConfig(c.config->view(), f.path, &image, nullptr) == 0 &&
                 !image.api_key.empty();
  char mode[8];
  snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  std::string what = api_key      ? "the API key itself (initramfs_plain_api_key)"
                     : c.tpm_blob ? "the wrapped keys and the sealed API key"
                                  : "the wrapped keys";
  ctx.report.Add("initramfs", f.path, api_key ? Level::kFail : Level::kWarn,
                 std::string("is readable by group or others (mode ") + mode + ") and carries " +
                     what +
                     "; a host-only image also root's password hash (dracut --force keeps the "
                     "mode of the image it replaces)",
                 "chmod 600 '" + f.path + "'");
  return 1;
}

void CheckImage(ReportContext& ctx, const std::map<std::string, std::string>& host_keys,
                InitramfsFacts& f) {
  Report& r = ctx.report;
  InitramfsContents c;
  std::string err;
  if (int rc = ReadInitramfs(f.path, &c, &err); rc < 0) {
    r.Add("initramfs", f.path, Level::kWarn, "cannot inspect it: " + err);
    return;
  }
  int refused = CheckRefusedMembers(ctx, c, f);
  f.module = c.has_unlocker;
  if (!c.has_unlocker) {
    if (host_keys.empty()) return;
    bool needed = false;
    for (const auto& [name, ct] : host_keys) needed = needed || NeededEarly(ctx, name);
    r.Add("initramfs", f.path, needed ? Level::kFail : Level::kInfo,
          needed ? "has no hpcs-unlock: the volumes opened before the network ask for a "
                   "passphrase at boot"
                 : "has no hpcs-unlock (every enrolled volume is _netdev: not needed)",
          needed ? Rebuild(f) + " (with the hpcs dracut module)" : "");
    return;
  }
  int problems = refused + CheckImageMode(ctx, c, f) + CheckImageConfig(ctx, c, f) +
                 CheckImageKeys(ctx, host_keys, c, f);
  if (problems == 0) {
    r.Add("initramfs", f.path, Level::kOk,
          "carries hpcs-unlock, the same config and the " + std::to_string(c.keys.size()) +
              " wrapped keys of the key directory");
  }
}

}  // namespace

void CheckInitramfs(ReportContext& ctx) {
  Report& r = ctx.report;
  std::vector<InitramfsImage> images;
  if (!ctx.options.initramfs.empty()) {
    for (const auto& p : ctx.options.initramfs) {
      InitramfsImage i;
      i.path = p;
      i.roles = {"given"};
      i.exists = access(p.c_str(), F_OK) == 0;
      images.push_back(std::move(i));
    }
  } else {
    struct utsname u;
    images = FindInitramfsImages(ctx.options.fs_root, uname(&u) == 0 ? u.release : "");
  }
  std::map<std::string, std::string> host_keys;
  std::string err;
  if (ReadKeyDirectory(ctx.config.key_dir, &host_keys, &err) < 0) return;  // said in CheckConfig
  for (const auto& img : images) {
    InitramfsFacts f;
    f.path = img.path;
    f.kernel = img.kernel;
    f.roles = img.roles;
    if (!img.exists) {
      r.Add("initramfs", img.path, Level::kWarn,
            "no such image" + (img.kernel.empty() ? ""
                                                  : " (kernel " + img.kernel + ", " +
                                                        Join(img.roles, " and ") + ")"),
            Rebuild(f));
    } else {
      CheckImage(ctx, host_keys, f);
    }
    r.initramfs.push_back(std::move(f));
  }
}

}  // namespace hpcs
