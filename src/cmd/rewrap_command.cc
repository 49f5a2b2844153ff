#include "cmd/rewrap_command.h"

#include "admin/rewrap.h"
#include "admin/rewrap_tokens.h"
#include "base/log.h"
#include "core/kms.h"

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

// "hpcs token 1 of '/dev/sdb1'"
std::string TokenId(const TokenRewrap& o) {
  return "hpcs token " + std::to_string(o.id) + " of '" + o.device + "'";
}

TokenRewrapPlan TokenPlan(const RewrapCommandOptions& options) {
  TokenRewrapPlan p;
  if (!options.crypttab.empty()) p.crypttab = options.crypttab;
  p.devices = options.devices;
  return p;
}

// The failures of preparing or writing the tokens, each logged; and the
// headers that could not be read (warnings: a crypttab volume that is not
// there now).
int LogTokenFailures(const std::vector<TokenRewrap>& tokens,
                     const std::vector<std::string>& unread) {
  int failed = 0;
  for (const auto& u : unread) LogWarning("Not looked at for hpcs tokens: " + u);
  for (const auto& o : tokens) {
    if (o.result == 0) continue;
    ++failed;
    LogError(o.error);
  }
  return failed;
}

// rewrap without --to-crk, for the tokens: each to its root key's newest
// version; one failure does not stop the others.
int RewrapTokens(const Config& config, KpClient& kp, const RewrapCommandOptions& options,
                 size_t* count) {
  TokenRewrapPlan plan = TokenPlan(options);
  plan.from = plan.to = &kp;
  plan.from_config = plan.to_config = &config;
  std::vector<TokenRewrap> tokens;
  std::vector<std::string> unread;
  PrepareTokenRewraps(plan, &tokens, &unread);
  WriteTokenRewraps(&tokens);
  *count = tokens.size();
  int changed = 0, current = 0;
  for (const auto& o : tokens) {
    if (o.result < 0) continue;
    if (o.written) {
      ++changed;
      LogInfo("Rewrapped " + TokenId(o) + ": key version " + o.old_version + " -> " +
              o.new_token.key_version);
    } else {
      ++current;
      LogInfo(TokenId(o) + " is already wrapped with the newest key version " + o.old_version);
    }
  }
  int failed = LogTokenFailures(tokens, unread);
  if (!tokens.empty()) {
    LogInfo(std::to_string(changed) + " of " + std::to_string(tokens.size()) +
            " hpcs tokens rewrapped, " + std::to_string(current) + " already current, " +
            std::to_string(failed) + " failed");
  }
  return failed;
}

int Rewrap(const Config& config, const std::string& crk, KpClient& kp,
           const RewrapCommandOptions& options) {
  std::vector<RewrapOutcome> outcomes;
  std::string err;
  if (RewrapKeys(kp, config.key_dir, crk, &outcomes, &err) < 0) {
    LogError("Failed to rewrap: " + err);
    return 1;
  }
  size_t token_count = 0;
  int token_failed = RewrapTokens(config, kp, options, &token_count);
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
    if (token_count == 0) {
      LogWarning("No wrapped keys under '" + config.key_dir + "/{logon,user}', and no hpcs tokens");
    }
    return token_failed ? 1 : 0;
  }
  LogInfo(std::to_string(changed) + " of " + std::to_string(outcomes.size()) +
          " keys rewrapped with root key '" + crk + "', " + std::to_string(current) +
          " already current, " + std::to_string(failed) + " failed");
  if (changed) LogInfo(kRebuild);
  return failed || token_failed ? 1 : 0;
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
  StagedFiles staged(config.key_dir);
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
  // The tokens of this root key, unwrapped and wrapped with the new one
  // (checked) before anything is written: if one cannot move, nothing moves.
  TokenRewrapPlan plan = TokenPlan(options);
  plan.from = &kp;
  plan.from_config = &config;
  plan.to = to;
  plan.to_config = options.to_config.empty() ? &config : &target;
  plan.from_crk = crk;
  plan.to_crk = to_crk;
  std::vector<TokenRewrap> tokens;
  std::vector<std::string> unread;
  PrepareTokenRewraps(plan, &tokens, &unread);
  if (int f = LogTokenFailures(tokens, unread); f > 0) {
    LogError(std::to_string(f) + " hpcs tokens cannot be moved to root key '" + to_crk +
             "'; nothing was changed");
    return 1;
  }
  bool tightened = false;
  if (StageMovedConfig(config, options.to_config.empty() ? nullptr : &target, to_crk, &staged,
                       &tightened, &err) < 0) {
    LogError("Failed to prepare the new configuration; nothing was changed: " + err);
    return 1;
  }
  if (staged.Commit(&err) < 0) {
    LogError("Failed to put the moved keys and the configuration in place: " + err);
    return 1;
  }
  if (tightened) {
    LogWarning("'" + config.path +
               "' now holds a literal API key: it was written mode 0600 (only its owner reads it)");
  }
  for (const auto& o : outcomes) {
    LogInfo("Moved '" + Id(o) + "' to root key '" + to_crk + "' (key version " + o.new_version +
            ")");
  }
  // The tokens last: each is replaced in its header in one write, and one
  // that fails keeps its old wrapping, which the old root key still opens.
  WriteTokenRewraps(&tokens);
  int token_failed = 0;
  for (const auto& o : tokens) {
    if (o.skipped) {
      LogInfo(TokenId(o) + " is wrapped by root key '" + o.old_token.crk + "': left as it is");
    } else if (o.written) {
      LogInfo("Moved " + TokenId(o) + " to root key '" + to_crk + "' (key version " +
              o.new_token.key_version + ")");
    } else if (o.result < 0) {
      ++token_failed;
      LogError(o.error +
               (options.to_config.empty()
                    ? "; it still opens with root key '" + crk + "': keep that key until"
                    : "; it names the old instance, which the config no longer does: it does not "
                      "open until") +
               " the volume is enrolled again (hpcs-enroll --remove, then hpcs-enroll --token)");
    }
  }
  LogInfo(
      "Moved " + std::to_string(outcomes.size()) + " keys from root key '" + crk + "' to '" +
      to_crk + "'; '" + config.path + "' now has default_crk_uuid = " + to_crk +
      (options.to_config.empty() ? "" : " and the [KP] settings of '" + options.to_config + "'"));
  LogInfo(std::string(kRebuild) +
          "; delete the old root key only after a reboot with the new one "
          "worked");
  return token_failed ? 1 : 0;
}

}  // namespace

int FinishInterruptedMove(const Config& config) {
  Recovery what;
  std::string err;
  if (RecoverStaged(config.key_dir, &what, &err) < 0) {
    LogError("Failed to finish the interrupted rewrap --to-crk (journal in '" + config.key_dir +
             "'): " + err + "; run the same command again");
    return 1;
  }
  switch (what) {
    case Recovery::kNone:
      return -1;
    case Recovery::kFinished:
      LogWarning("Finished an interrupted rewrap --to-crk: every moved key and '" + config.path +
                 "' are in place; " + kRebuild);
      return 0;
    case Recovery::kRolledBack:
      LogWarning("Undid an interrupted rewrap --to-crk: every key and '" + config.path +
                 "' are as they were before it; nothing else was done (run the command again to "
                 "move the keys)");
      return 0;
  }
  return 1;
}

int RewrapCommand(const Config& config, const std::string& crk, KpClient& kp,
                  const RewrapCommandOptions& options) {
  if (options.to_crk.empty()) return Rewrap(config, crk, kp, options);
  return Move(config, crk, kp, options);
}

}  // namespace hpcs
