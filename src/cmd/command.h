// The command layer shared by the two binaries (hpcs-for-luks and
// hpcs-unlock): what both say to people about the config and about a run of
// unwraps, and how that run becomes an exit status. Unlike the core library,
// this layer logs at every level; each binary maps the statuses to its own
// exit codes.
#ifndef HPCS_CMD_COMMAND_H_
#define HPCS_CMD_COMMAND_H_

#include <string>

#include "base/log.h"
#include "core/config.h"
#include "core/key_dir_lock.h"
#include "core/keyring.h"
#include "core/unlock.h"
#include "kp/kp_client.h"

namespace hpcs {

// Loads the config. Logs why it failed, or warns (with the chmod command)
// when the file holds the API key and is readable by group or others.
bool LoadConfigAndWarn(const std::string& path, Config* out);

// Takes the lock of the config's key directory (key_dir_lock.h), waiting up
// to kKeyDirLockWait for another writer; logs why not.
bool LockKeyDirOrLog(const Config& config, KeyDirLock* lock);

enum class UnlockStatus {
  kAllLoaded,      // every key is in the keyring, or there are none
  kSomeFailed,     // each failure is logged
  kUnreachable,    // nothing loaded: the KMS never answered
  kCannotReadKeys  // the key directory could not be read
};

// Unwraps the stored keys of `req` into the keyring and reports: each key as
// it lands (at `each_key` level), each failure and each requested key without
// a file (errors), then a summary.
UnlockStatus UnlockAndReport(const UnlockRequest& req, KpClient& kp, Keyring& keyring,
                             LogLevel each_key);

}  // namespace hpcs

#endif  // HPCS_CMD_COMMAND_H_
