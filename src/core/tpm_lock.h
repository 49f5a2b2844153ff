// The TPM lock: once hpcs-unlock is done with the TPM in a boot (after its
// last unseal, and on every failure path: a failed unlock, the emergency
// shell), it extends kLockPcr with a fixed measurement. A blob sealed to that
// PCR's value from before the lock then no longer unseals for the rest of the
// boot: not for a console shell, not for a root process of the real root, not
// for a member of the tss group. The next boot starts with the PCR reset.
//
// Sealing must therefore use the value the PCR holds *before* the lock, which
// is not its current value once this boot is locked. The lock leaves a record
// (kTpmLockRecordPath, in /run: gone at the next boot) of the value before and
// after; PreLockValue reads it.
#ifndef HPCS_CORE_TPM_LOCK_H_
#define HPCS_CORE_TPM_LOCK_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tpm/tpm.h"

namespace hpcs {

// In the units' RuntimeDirectory (with RuntimeDirectoryPreserve=yes, so that
// systemd keeps it when they stop): the one place under /run they may write.
inline constexpr char kTpmLockRecordPath[] = "/run/hpcs-for-luks/tpm-lock";

// kTpmLockRecordPath, or $HPCS_TPM_LOCK_RECORD when set (tests).
std::string ResolveTpmLockRecordPath();

// What is extended into kLockPcr: the SHA-256 (TPM 2.0) or SHA-1 (TPM 1.2)
// of this text.
inline constexpr std::string_view kTpmLockEvent = "hpcs-for-luks: unlock done, TPM locked";

struct TpmLockRecord {
  TpmKind kind = TpmKind::kTpm2;
  unsigned pcr = kLockPcr;
  std::vector<uint8_t> before;  // the PCR's value before the lock
  std::vector<uint8_t> after;   // and after it
};

// The digest that is extended, and what an extend with it makes of `old`
// (H(old || digest)), in the bank of `kind`.
std::vector<uint8_t> TpmLockDigest(TpmKind kind);
std::vector<uint8_t> ExtendedPcrValue(TpmKind kind, std::span<const uint8_t> old,
                                      std::span<const uint8_t> digest);

// The record's text ("kind: tpm2\npcr: 15\nbefore: HEX\nafter: HEX\n") and
// back; -EBADMSG names what is wrong.
std::string FormatTpmLockRecord(const TpmLockRecord& r);
int ParseTpmLockRecord(std::string_view text, TpmLockRecord* out, std::string* err);

// Extends kLockPcr unless this boot is locked already (the record says so and
// the PCR still holds its `after`), and writes the record at record_path.
// *already says whether it was locked before.
int LockTpm(Tpm& tpm, const std::string& record_path, bool* already, std::string* err);

// LockTpm on a thread of its own, given up at `deadline` (-ETIMEDOUT): a TPM
// that does not answer must not hold the boot. The thread keeps its own
// references and may finish later.
int LockTpmWithin(std::shared_ptr<Tpm> tpm, const std::string& record_path,
                  std::chrono::steady_clock::time_point deadline, bool* already, std::string* err);

// The value kLockPcr holds when hpcs-unlock unseals at a boot like this one:
// the record's `before` when this boot was locked, else the PCR's current
// value (nothing locked it in this boot). *locked says which. A record that
// is not root's or is malformed is refused (-EPERM, -EBADMSG), not guessed
// around.
int PreLockValue(Tpm& tpm, const std::string& record_path, std::vector<uint8_t>* value,
                 bool* locked, std::string* err);

}  // namespace hpcs

#endif  // HPCS_CORE_TPM_LOCK_H_
