#include "cmd/boot_tpm_lock.h"

#include <keyutils.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "base/fileio.h"
#include "base/log.h"
#include "core/rotation.h"
#include "core/token_handoff.h"
#include "core/tpm_lock.h"
#include "tpm/tpm.h"
#include "tpm/tpm_probe.h"

namespace hpcs {
namespace {

bool InInitramfs() { return access(kInitrdRelease, F_OK) == 0; }

// Whether this run locks the TPM when it ends: with api_key = TPM unless
// [HFL] tpm_lock = no; and in the initramfs also when our config could not
// be read (it is ours there, and its blob is still in the TPM's reach).
bool LocksTheTpm(const Config* config) {
  if (!config) return InInitramfs();
  return config->api_key_from_tpm && config->tpm_lock;
}

}  // namespace

// The TPM lock (core/tpm_lock.h), at the end of every run whatever its
// outcome: from here on nothing in this boot can unseal the API key.
void LockTheTpm(const Config* config) {
  if (!LocksTheTpm(config)) return;
  std::string err;
  if (CheckTpmSupport(&err) < 0) return;
  TpmOptions to;
  if (config) to.tpm2_tcti = ResolveTpm2Tcti(config->tpm2_tcti);
  // Past the run's own deadline: at most this long more (the units allow 10 s).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  to.deadline = deadline;
  // The TPM that unseals the blob: the blob's kind, else the machine's.
  std::string blob;
  std::optional<TpmKind> kind;
  if (config &&
      ReadRegularFile(config->tpm_blob, kMaxSealedBlobSize, &blob, nullptr, nullptr) == 0) {
    kind = BlobKind(blob);
  }
  if (!kind) {
    if (to.tpm2_tcti.empty() && !ProbeTpm("").kind) return;  // no TPM: nothing to lock
    kind = DetectTpmKind(to);
  }
  std::shared_ptr<Tpm> tpm = MakeTpm(*kind, to);
  bool already = false;
  if (LockTpmWithin(tpm, ResolveTpmLockRecordPath(), deadline, &already, &err) < 0) {
    LogWarning("could not lock the " + std::string(TpmKindName(*kind)) + ": " + err +
               "; until the next boot, whoever can talk to the TPM can unseal the API key");
    return;
  }
  if (!already) {
    LogInfo("the TPM is locked for the rest of this boot: PCR " + std::to_string(kLockPcr) +
            " is extended, the API key no longer unseals");
  }
}

// The real root after a locked initramfs: the token it handed on, if any.
bool TakeTokenAfterTheLock(const Config& config, Secret* token) {
  if (!config.api_key_from_tpm || !config.tpm_lock || InInitramfs()) return false;
  std::string err;
  int r = TakeHandedToken(KEY_SPEC_USER_KEYRING, token, &err);
  if (r == 0) {
    LogInfo("using the IAM token handed on by the initramfs (the TPM is locked for this boot)");
    return true;
  }
  if (r != -ENOKEY) LogWarning(err);
  return false;
}

bool ReadTokenAfterTheLock(const Config& config, Secret* token) {
  if (!config.api_key_from_tpm || !config.tpm_lock || InInitramfs()) return false;
  std::string err;
  if (ReadHandedToken(KEY_SPEC_USER_KEYRING, token, &err) == 0) return true;
  LogDebug(err);
  return false;
}

void DropHandedToken(const Config& config) {
  if (!config.api_key_from_tpm || InInitramfs()) return;
  Secret token;
  TakeHandedToken(KEY_SPEC_USER_KEYRING, &token, nullptr);
}

// Why an unseal failed, when the reason is this boot's lock.
std::string LockHint(const Config& config) {
  if (!config.api_key_from_tpm || CheckTpmSupport(nullptr) < 0) return "";
  struct stat st;
  if (stat(ResolveTpmLockRecordPath().c_str(), &st) != 0) return "";
  return "; the TPM was locked for this boot once hpcs-unlock was done with it (PCR " +
         std::to_string(kLockPcr) +
         "), and no IAM token was handed on (the initramfs's run "
         "got none, or this run came more than " +
         std::to_string(kMaxHandoffTtl.count()) +
         " s later): keys left cannot be unwrapped before the next boot (README.md, \"The "
         "TPM lock\")";
}

// The initramfs after its run: its token for the real root's run.
void HandOnToken(const Config& config, const Kms& kms) {
  if (!InInitramfs() || !config.api_key_from_tpm || !config.tpm_lock) return;
  Secret token;
  Clock::time_point expires;
  if (!kms.client->CurrentToken(&token, &expires)) return;
  auto left = std::chrono::duration_cast<std::chrono::seconds>(expires - Clock::now());
  left -= std::chrono::seconds(30);
  if (left <= std::chrono::seconds(0)) return;
  std::string err;
  if (HandOffToken(token, left, KEY_SPEC_USER_KEYRING, &err) < 0) {
    LogWarning(err + "; the real root cannot unwrap keys the initramfs did not");
  } else {
    LogDebug("handed the IAM token on to the real root (user key '" +
             std::string(kHandoffKeyDescription) + "' in @u)");
  }
}

}  // namespace hpcs
