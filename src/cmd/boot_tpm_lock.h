// The TPM lock (core/tpm_lock.h) as hpcs-unlock applies it, and the IAM token
// the initramfs hands on to the real root's run in its place
// (core/token_handoff.h): the command layer's part, which decides and logs.
#ifndef HPCS_CMD_BOOT_TPM_LOCK_H_
#define HPCS_CMD_BOOT_TPM_LOCK_H_

#include <string>

#include "base/secret.h"
#include "core/config.h"
#include "core/kms.h"

namespace hpcs {

// At the end of every run, whatever its outcome (config: nullptr when it
// could not be read): with api_key = TPM unless [HFL] tpm_lock = no, and in
// the initramfs also without a readable config, extends kLockPcr, bounded to
// a few seconds. Logs what it did or why it could not.
void LockTheTpm(const Config* config);

// The real root after a locked initramfs: takes the token it handed on.
bool TakeTokenAfterTheLock(const Config& config, Secret* token);

// The same for one volume (hpcs-unlock --token-open): reads the token and
// leaves it for the run that takes it. Logs at debug level only.
bool ReadTokenAfterTheLock(const Config& config, Secret* token);

// The real root with nothing to unwrap: the token is revoked unused.
void DropHandedToken(const Config& config);

// "; the TPM was locked ..." when this boot's lock explains a failed unseal,
// else empty.
std::string LockHint(const Config& config);

// The initramfs after its run: hands the client's token on to the real root.
void HandOnToken(const Config& config, const Kms& kms);

}  // namespace hpcs

#endif  // HPCS_CMD_BOOT_TPM_LOCK_H_
