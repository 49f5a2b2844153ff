#include "cmd/command.h"

#include <cerrno>
#include <chrono>
#include <vector>

namespace hpcs {
namespace {

// "user key 'luks:root'"
std::string KeyPhrase(const StoredKey& k) {
  return std::string(KeyTypeName(k.type)) + " key '" + k.desc + "'";
}

}  // namespace

bool LoadConfigAndWarn(const std::string& path, Config* out) {
  std::string err;
  if (LoadConfig(path, out, &err) < 0) {
    LogError("Failed to load configuration: " + err);
    return false;
  }
  if (out->api_key_exposed) {
    LogWarning("'" + path +
               "' holds the API key and is readable by group or others; run: chmod 600 '" + path +
               "'");
  }
  return true;
}

bool LockKeyDirOrLog(const Config& config, KeyDirLock* lock) {
  std::string err;
  if (int r = LockKeyDir(config.key_dir, kKeyDirLockWait, lock, &err); r < 0) {
    LogError("Failed to lock the key directory '" + config.key_dir + "': " + err +
             (r == -EWOULDBLOCK ? "; try again once it is done" : ""));
    return false;
  }
  return true;
}

UnlockStatus UnlockAndReport(const UnlockRequest& req, KpClient& kp, Keyring& keyring,
                             LogLevel each_key) {
  std::vector<KeyOutcome> outcomes;
  std::string err;
  auto started = Clock::now();
  int r = UnlockKeys(req, kp, keyring, &outcomes, &err, [&](const KeyOutcome& o) {
    if (o.result == 0 && !o.already_loaded) {
      Log(each_key, "added " + KeyPhrase(o.key) + " to the user keyring");
    }
  });
  if (r < 0) {
    LogError("Failed to read the wrapped keys: " + err);
    return UnlockStatus::kCannotReadKeys;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  for (const auto& o : outcomes) {
    if (o.result == 0) continue;
    LogError(KeyPhrase(o.key) + " not loaded: " + o.error,
             {{"HPCS_KEY", KeyLabel(o.key.type, o.key.desc)}});
  }
  for (const auto& o : outcomes) {
    std::string label = KeyLabel(o.key.type, o.key.desc);
    if (o.updated) {
      LogInfo("stored the newer wrapping of '" + label + "' (the root key was rotated)");
    } else if (!o.update_error.empty()) {
      LogWarning("kept the older wrapping of '" + label + "': " + o.update_error);
    }
  }
  UnlockSummary s = SummarizeUnlock(req, outcomes);
  for (const auto& desc : s.missing) {
    LogError("key '" + desc + "' was asked for but there is no such file under '" + req.key_dir +
             "/{logon,user}'");
  }
  if (outcomes.empty() && req.only.empty()) {
    LogWarning("no wrapped keys under '" + req.key_dir + "/{logon,user}'");
    return UnlockStatus::kAllLoaded;
  }
  int total = s.loaded + s.failed;
  LogInfo("loaded " + std::to_string(s.loaded) + " of " + std::to_string(total) + " keys in " +
          std::to_string(ms) + " ms" +
          (s.already_loaded ? " (" + std::to_string(s.already_loaded) + " already in the keyring)"
                            : ""));
  if (s.failed == 0) return UnlockStatus::kAllLoaded;
  LogError(std::to_string(s.failed) + " of " + std::to_string(total) + " keys failed");
  if (s.loaded == 0 && s.unreachable == s.failed) return UnlockStatus::kUnreachable;
  return UnlockStatus::kSomeFailed;
}

}  // namespace hpcs
