#include "core/token_volumes.h"

#include <dirent.h>
#include <stdlib.h>

#include <algorithm>
#include <memory>

#include "base/strutil.h"
#include "core/cmdline.h"
#include "core/crypttab.h"
#include "core/hpcs_token.h"
#include "core/luks2_metadata.h"

namespace hpcs {

namespace {

void AddOnce(std::vector<std::string>* out, std::string path) {
  if (std::find(out->begin(), out->end(), path) == out->end()) out->push_back(std::move(path));
}

// rd.luks.uuid= takes "UUID" or "luks-UUID".
std::string WithoutLuksPrefix(std::string_view v) {
  if (v.substr(0, 5) == "luks-") v.remove_prefix(5);
  return std::string(v);
}

}  // namespace

std::vector<std::string> BootVolumeDevices(std::string_view crypttab, std::string_view cmdline) {
  std::vector<std::string> out;
  for (const CrypttabEntry& e : ParseCrypttab(crypttab)) {
    if (e.Has("noauto")) continue;
    AddOnce(&out, CrypttabSourcePath(e.source));
  }
  for (const std::string& word : SplitKernelCmdline(cmdline)) {
    std::string_view w(word);
    std::string uuid;
    if (w.substr(0, 13) == "rd.luks.uuid=") {
      uuid = WithoutLuksPrefix(w.substr(13));
    } else if (w.substr(0, 13) == "rd.luks.name=") {
      std::string_view v = w.substr(13);
      uuid = WithoutLuksPrefix(v.substr(0, v.find('=')));
    }
    // Only a UUID's characters: the kernel command line must not name
    // another path for us to read.
    if (!uuid.empty() && uuid.size() <= 64 &&
        uuid.find_first_not_of("0123456789abcdefABCDEF-") == std::string::npos) {
      AddOnce(&out, "/dev/disk/by-uuid/" + ToLower(uuid));
    }
  }
  return out;
}

bool DeviceHeld(const std::string& path, const std::string& sys) {
  std::unique_ptr<char, decltype(&free)> real(realpath(path.c_str(), nullptr), &free);
  if (!real) return false;
  std::string name(real.get());
  name = name.substr(name.rfind('/') + 1);
  DIR* d = opendir((sys + "/class/block/" + name + "/holders").c_str());
  if (!d) return false;
  bool held = false;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') {
      held = true;
      break;
    }
  }
  closedir(d);
  return held;
}

std::vector<std::string> OurHpcsTokens(const std::vector<std::string>& tokens_json,
                                       std::string_view instance) {
  std::vector<std::string> out;
  for (const std::string& json : tokens_json) {
    HpcsToken t;
    std::string why;
    if (ParseHpcsToken(json, &t, &why) == 0 && t.instance == instance) out.push_back(json);
  }
  return out;
}

std::vector<std::string> PendingTokenVolumes(const std::vector<std::string>& devices,
                                             std::string_view instance, const std::string& sys) {
  std::vector<std::string> out;
  for (const std::string& dev : devices) {
    LuksHeader h;
    std::string why;
    if (ReadLuks2Header(dev, &h, &why) < 0) continue;
    std::vector<std::string> hpcs;
    for (const LuksToken& t : h.tokens) {
      if (t.type == "hpcs") hpcs.push_back(t.json);
    }
    if (OurHpcsTokens(hpcs, instance).empty() || DeviceHeld(dev, sys)) continue;
    out.push_back(dev);
  }
  return out;
}

}  // namespace hpcs
