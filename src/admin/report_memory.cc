// report: the memory the volumes opened at boot need for their key slots.
// systemd opens them in parallel, and an argon2 key slot costs its memory
// while it is tried: a few volumes with the default ~1 GiB each can exhaust
// a small machine's RAM and call the OOM killer at boot.
#include <algorithm>
#include <cstdio>

#include "admin/report_checks.h"
#include "base/fileio.h"
#include "base/strutil.h"
#include "core/hpcs_token.h"

namespace hpcs {

namespace {

// cryptsetup caps a new argon2 key slot at half the RAM; more than that
// for all volumes together leaves too little for everything else at boot.
constexpr uint64_t kShareOfRam = 2;

uint64_t MemTotalKib(const std::string& meminfo) {
  std::string text;
  if (ReadRegularFile(meminfo, kMaxSmallFileSize, &text, nullptr, nullptr) < 0) return 0;
  for (const auto& line : Split(text, '\n')) {
    if (!StartsWith(line, "MemTotal:")) continue;
    unsigned long long kib = 0;
    std::string_view v = Trim(std::string_view(line).substr(9));
    if (EndsWith(v, "kB")) v = Trim(v.substr(0, v.size() - 2));
    if (ParseUint(v, &kib)) return kib;
  }
  return 0;
}

// The memory a volume's unlock at boot costs: the key slots of its keyring
// token for a wrapped key of ours and of its hpcs tokens, when it has one,
// else (a passphrase at the prompt, tried slot by slot) the most any of its
// key slots needs.
uint64_t VolumeKib(const ReportContext& ctx, const ReportVolume& v) {
  uint64_t most = 0;
  bool ours = false;
  std::vector<const LuksToken*> tokens;
  for (const auto& k : ctx.stored) {
    if (k.type != KeyType::kUser) continue;
    for (const LuksToken* t : v.header.KeyringTokens(k.desc)) tokens.push_back(t);
  }
  for (const auto& t : v.header.tokens) {
    if (t.type == kHpcsTokenType) tokens.push_back(&t);
  }
  for (const LuksToken* t : tokens) {
    for (int slot : t->keyslots) {
      const LuksKeyslot* s = v.header.Keyslot(slot);
      if (!s) continue;
      most = std::max(most, s->memory_kib);
      ours = true;
    }
  }
  if (ours) return most;
  for (const auto& s : v.header.keyslots) most = std::max(most, s.memory_kib);
  return most;
}

std::string MiB(uint64_t kib) { return std::to_string((kib + 512) / 1024) + " MiB"; }

}  // namespace

void CheckMemory(ReportContext& ctx) {
  Report& r = ctx.report;
  std::string meminfo = ctx.options.fs_root;
  if (!meminfo.empty() && meminfo.back() == '/') meminfo.pop_back();
  meminfo += "/proc/meminfo";
  MemoryFacts m;
  m.ram_kib = MemTotalKib(meminfo);
  std::vector<std::string> heavy;
  for (const auto& v : ctx.volumes) {
    if (v.entry.Has("noauto")) continue;
    uint64_t kib = VolumeKib(ctx, v);
    m.volumes.push_back({v.entry.name, v.device, kib});
    m.argon2_kib += kib;
    if (kib > 0) heavy.push_back("'" + v.entry.name + "' " + MiB(kib));
  }
  r.memory = m;
  if (!ctx.crypttab_read) return;
  if (m.ram_kib == 0) {
    r.Add("memory", meminfo, Level::kInfo, "the RAM size is unknown; memory not checked");
    return;
  }
  std::string summary = std::to_string(m.volumes.size()) + " volumes opened at boot need " +
                        MiB(m.argon2_kib) + " of argon2 memory at once; RAM " + MiB(m.ram_kib);
  if (m.argon2_kib * kShareOfRam > m.ram_kib) {
    r.Add("memory", ctx.options.crypttab, Level::kWarn,
          summary + " (" + Join(heavy, ", ") +
              "): opened in parallel at boot they may exhaust the memory (OOM killer)",
          "lower the cost of the slots used at boot: cryptsetup luksConvertKey --pbkdf pbkdf2 "
          "DEVICE (a slot hpcs-enroll made is PBKDF2 already), or --pbkdf-memory KIB");
  } else {
    r.Add("memory", ctx.options.crypttab, Level::kOk, summary);
  }
}

}  // namespace hpcs
