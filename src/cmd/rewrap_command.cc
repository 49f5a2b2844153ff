#include "cmd/rewrap_command.h"

#include <sys/stat.h>

#include "admin/ini_edit.h"
#include "admin/rewrap.h"
#include "base/fileio.h"
#include "base/log.h"
#include "core/kms.h"
#include "tpm/tpm.h"

namespace hpcs {

namespace {

constexpr char kRebuild[] =
    "Rebuild the initramfs so that it carries the new wrapped keys: dracut --force "
    "(check with: hpcs-for-luks report)";

std::string Id(const RewrapOutcome& o) {
  return std::string(KeyTypeName(o.key.type)) + "/" + o.key.desc;
}

void LogFailures(const std::vector<RewrapOutcome>& outcomes, int* failed) {
  for (const auto& o : outcomes) {
    if (o.result == 0) continue;
    ++*failed;
    LogError(o.error, {{"HPCS_KEY", Id(o)}});
  }
}

int Rewrap(const Config& config, const std::string& crk, KpClient& kp) {
  std::vector<RewrapOutcome> outcomes;
  std::string err;
  if (RewrapKeys(kp, config.key_dir, crk, &outcomes, &err) < 0) {
    LogError("Failed to rewrap: " + err);
    return 1;
  }
  int changed = 0, current = 0, failed = 0;
  for (const auto& o : outcomes) {
    if (o.result < 0) continue;
    if (o.changed) {
      ++changed;
      LogInfo("Rewrapped '" + Id(o) + "': key version " + o.old_version + " -> " + o.new_version);
    } else {
      ++current;
      LogInfo("'" + Id(o) + "' is already wrapped with the newest key version " + o.new_version);
    }
  }
  LogFailures(outcomes, &failed);
  if (outcomes.empty()) {
    LogWarning("No wrapped keys under '" + config.key_dir + "/{logon,user}'");
    return 0;
  }
  LogInfo(std::to_string(changed) + " of " + std::to_string(outcomes.size()) +
          " keys rewrapped with root key '" + crk + "', " + std::to_string(current) +
          " already current, " + std::to_string(failed) + " failed");
  if (changed) LogInfo(kRebuild);
  return failed ? 1 : 0;
}

// The config after a move: default_crk_uuid = to_crk, and with a second
// config its whole [KP] section (endpoints, instance, API key).
int StageConfig(const Config& config, const Config* target, const std::string& to_crk,
                StagedFiles* staged, std::string* err) {
  Secret text;
  struct stat st {};
  if (int r = ReadRegularFileSecret(config.path, 1024 * 1024, &text, &st, err); r < 0) return r;
  Secret edited;
  if (target) {
    Secret other;
    if (int r = ReadRegularFileSecret(target->path, 1024 * 1024, &other, nullptr, err); r < 0) {
      return r;
    }
    Secret kp = IniSectionBody(other.view(), "KP");
    Secret replaced = ReplaceIniSection(text.view(), "KP", kp.view());
    edited = SetIniValue(replaced.view(), "KP", "default_crk_uuid", to_crk);
    if (target->api_key_from_tpm && target->tpm_blob != config.tpm_blob) {
      // The target's sealed API key becomes this machine's.
      Secret blob;
      if (int r = ReadRegularFileSecret(target->tpm_blob, kMaxSealedBlobSize, &blob, nullptr, err);
          r < 0) {
        return r;
      }
      if (int r = staged->Stage(config.tpm_blob, blob.view(), 0600, err); r < 0) return r;
    }
  } else {
    edited = SetIniValue(text.view(), "KP", "default_crk_uuid", to_crk);
  }
  return staged->Stage(config.path, edited.view(), st.st_mode & 07777, err);
}

int Move(const Config& config, const std::string& crk, KpClient& kp,
         const RewrapCommandOptions& options) {
  const std::string& to_crk = options.to_crk;
  Config target;
  Kms target_kms;
  KpClient* to = &kp;
  std::string err;
  if (!options.to_config.empty()) {
    if (LoadConfig(options.to_config, &target, &err) < 0) {
      LogError("Failed to load the target configuration: " + err);
      return 1;
    }
    KmsOptions ko;
    ko.deadline = options.deadline;
    if (OpenKms(target, ko, &target_kms, &err) < 0) {
      LogError("Failed to reach the target instance: " + err);
      return 1;
    }
    to = target_kms.client.get();
  }
  StagedFiles staged;
  std::vector<RewrapOutcome> outcomes;
  int r = MoveKeys(kp, crk, *to, to_crk, config.key_dir, &staged, &outcomes, &err);
  if (r < -1) {
    LogError("Failed to move the keys: " + err);
    return 1;
  }
  int failed = 0;
  LogFailures(outcomes, &failed);
  if (r < 0) {
    LogError(std::to_string(failed) + " of " + std::to_string(outcomes.size()) +
             " keys cannot be moved to root key '" + to_crk + "'; nothing was changed");
    return 1;
  }
  if (StageConfig(config, options.to_config.empty() ? nullptr : &target, to_crk, &staged, &err) <
      0) {
    LogError("Failed to prepare the new configuration; nothing was changed: " + err);
    return 1;
  }
  if (staged.Commit(&err) < 0) {
    LogError("Failed to put the moved keys and the configuration in place: " + err +
             "; run the same command again");
    return 1;
  }
  for (const auto& o : outcomes) {
    LogInfo("Moved '" + Id(o) + "' to root key '" + to_crk + "' (key version " + o.new_version +
            ")");
  }
  LogInfo(
      "Moved " + std::to_string(outcomes.size()) + " keys from root key '" + crk + "' to '" +
      to_crk + "'; '" + config.path + "' now has default_crk_uuid = " + to_crk +
      (options.to_config.empty() ? "" : " and the [KP] settings of '" + options.to_config + "'"));
  LogInfo(std::string(kRebuild) +
          "; delete the old root key only after a reboot with the new one "
          "worked");
  return 0;
}

}  // namespace

int RewrapCommand(const Config& config, const std::string& crk, KpClient& kp,
                  const RewrapCommandOptions& options) {
  if (options.to_crk.empty()) return Rewrap(config, crk, kp);
  return Move(config, crk, kp, options);
}

}  // namespace hpcs
