// The API key sealed to the machine's TPM (`api_key = TPM`): the one
// interface the KMS code and the admin CLI use. Two stacks sit behind it:
//   TPM 1.2  tpm1.h: trousers' libtspi through tcsd; blobs in tpm-tools'
//            tpm_sealdata format (tpm1_blob.h)
//   TPM 2.0  tpm2.h: tpm2-tss's ESAPI, straight to /dev/tpmrm0 (no daemon);
//            blobs in our self-describing text format (tpm2_blob.h)
// A blob says which kind it is by its first line, so `api_key = TPM` works
// with either; which TPM the machine has is decided once, in tpm_probe.h.
// Built with HPCS_TPM=OFF, the same entry points come from tpm_none.cc and
// answer -EOPNOTSUPP with one message (CheckTpmSupport): callers need no
// #ifdef.
#ifndef HPCS_TPM_TPM_H_
#define HPCS_TPM_TPM_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"

namespace hpcs {

// Return codes of everything here (negative errno values; *err always says
// what happened and what to do):
//   -EINVAL        bad argument (PCR index out of range, bad TCTI string)
//   -EFBIG         blob larger than it can be
//   -EBADMSG       blob malformed or corrupt (the message names the part)
//   -EMEDIUMTYPE   blob of the other TPM kind than this machine's TPM
//   -ENODEV        no TPM (TPM 2.0: no /dev/tpmrm0 or /dev/tpm0), or it is
//                  disabled or failed
//   -ECONNREFUSED  TPM 1.2: tcsd not reachable; TPM 2.0: TCTI not reachable
//   -ENOKEY        TPM 1.2 not owned / SRK unknown to tcsd
//   -EKEYREJECTED  PCR values changed since sealing
//   -EACCES        an authorization failed (a password on the SRK or the
//                  owner hierarchy, blob not made by us or tpm-tools), or
//                  the TPM 2.0's primary key is not the one sealed under
//   -EBUSY         dictionary-attack lockout active
//   -ETIMEDOUT     the TPM did not answer before the deadline
//   -ENODATA       the unsealed API key is empty (UnsealApiKey only)
//   -EIO           any other TSS/TPM error (its code and text are in *err)
//   -EOPNOTSUPP    this build has no TPM support (HPCS_TPM=OFF)

enum class TpmKind { kTpm1, kTpm2 };

// A sealed API key file of either kind is at most this long (ours are under
// 2 KB): the cap for every read of a blob, and for the TPM 1.2 parser.
inline constexpr size_t kMaxSealedBlobSize = 64 * 1024;

// 0 when this build has the TPM stacks; -EOPNOTSUPP and the one message that
// says so (naming HPCS_TPM) when it was built without them. Ask it first:
// before reading a blob or an API key to seal.
int CheckTpmSupport(std::string* err);

// "TPM 1.2" or "TPM 2.0".
const char* TpmKindName(TpmKind kind);

struct TpmOptions {
  // TPM 2.0: a TCTI in tpm2-tools' syntax ("device:/dev/tpmrm0",
  // "swtpm:host=127.0.0.1,port=2321", "mssim:..."); empty: /dev/tpmrm0,
  // else /dev/tpm0. See ResolveTpm2Tcti.
  std::string tpm2_tcti;
  // Unsealing gives up at this point, whatever the TPM or tcsd does.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // TPM 2.0 without a TCTI: how long to wait for the device node to appear
  // (the driver may still be loading at boot); never past the deadline.
  std::chrono::milliseconds device_wait{0};
  // TPM 1.2: keep trying a tcsd that refuses the connection (still starting,
  // e.g. in the real root) until the deadline, instead of failing at once.
  bool wait_for_tcsd = false;
  // Prefix for /dev and /sys, for tests; empty on a real system.
  std::string fs_root;
  // TPM 2.0 sealing: the SHA-256 values these PCRs must hold when the key is
  // unsealed, instead of their current values (seal-api-key --pcr N=HEX:
  // sealing for a state known from another boot).
  std::map<unsigned, std::array<uint8_t, 32>> seal_pcr_values;
  // TPM 1.2 sealing: the SHA-1 values (20 bytes) these PCRs must hold when
  // the key is unsealed, instead of their current values (the lock PCR's
  // value before this boot's lock: core/tpm_lock.h).
  std::map<unsigned, std::vector<uint8_t>> seal_pcr_values_tpm1;
  // Tests: the TPM to use instead of MakeTpm's (see FakeTpm, test_doubles.h).
  std::function<std::shared_ptr<class Tpm>(TpmKind)> make_tpm;
};

// The TCTI to use: $HPCS_TPM2_TCTI when set, else the configured one
// ([HFL] tpm2_tcti), else empty (the kernel's device).
std::string ResolveTpm2Tcti(std::string_view configured);

class Tpm {  // interface so tests can substitute one
 public:
  virtual ~Tpm() = default;
  virtual TpmKind kind() const = 0;
  // blob_text: the whole blob file. On success *out holds the data.
  virtual int Unseal(std::string_view blob_text, Secret* out, std::string* err) = 0;
  // Seals data to the current values of the given PCRs (TPM 2.0: of the
  // SHA-256 bank, or TpmOptions::seal_pcr_values); *blob_text gets the file
  // contents.
  virtual int Seal(const Secret& data, std::span<const unsigned> pcrs, std::string* blob_text,
                   std::string* err) = 0;
  // A PCR of the bank our policies use (TPM 2.0: SHA-256, 32 bytes; TPM 1.2:
  // SHA-1, 20 bytes): its current value, and extending it with a digest of
  // that bank's size (new = H(old || digest)). Nothing can undo an extend
  // before the next reset of the TPM (PCRs 0 to 15).
  virtual int ReadPcr(unsigned pcr, std::vector<uint8_t>* value, std::string* err) = 0;
  virtual int ExtendPcr(unsigned pcr, std::span<const uint8_t> digest, std::string* err) = 0;
};

std::unique_ptr<Tpm> MakeTpm(TpmKind kind, const TpmOptions& options);

// The kind of a blob, from its first line; nullopt if it is neither.
std::optional<TpmKind> BlobKind(std::string_view blob_text);

// What a blob that unseals lacks against one sealed now, a sentence each
// (empty: nothing, or not a blob this build parses). A TPM 2.0 blob sealed
// before issue 22 records no primary key name: a device between the machine
// and its TPM that answers in its place goes unnoticed.
std::vector<std::string> BlobShortcomings(std::string_view blob_text);

// The kind of this machine's TPM, for sealing: TPM 2.0 when a TCTI is
// configured, else what ProbeTpm (tpm_probe.h) finds; TPM 1.2 when it finds
// none (then trousers' tcsd is the way, and says what is wrong).
TpmKind DetectTpmKind(const TpmOptions& options);

// True when this machine (or the configured TCTI) has a TPM 2.0.
bool HaveTpm2(const TpmOptions& options);

// The PCR that hpcs-unlock extends once it is done with the TPM in a boot
// (core/tpm_lock.h): no firmware, boot loader or kernel measures into it
// before then, and it is not resettable (TPM 1.2 and 2.0 alike).
inline constexpr unsigned kLockPcr = 15;

// The PCRs sealed to when none are given: TPM 1.2 4 and 5 (as IBM's
// hpcs-for-luks and tpm_sealdata -p 4 -p 5); TPM 2.0 7 and 8 (README.md,
// "Which PCRs"); and kLockPcr for both.
std::vector<unsigned> DefaultPcrs(TpmKind kind);

// What the chosen PCRs leave open, one sentence each (empty: nothing):
// the kernel command line (GRUB: PCR 8; systemd-stub UKI: 11 and 12) and
// the initramfs (GRUB: PCR 9; UKI: 11).
std::vector<std::string> PcrCoverageWarnings(std::span<const unsigned> pcrs);

// One seal-api-key --pcr argument: "N", or "N=HEX" with the SHA-256 value
// (64 hex digits) the PCR must hold at unseal time. -EINVAL with the reason.
int ParsePcrArgument(std::string_view arg, unsigned* pcr,
                     std::optional<std::array<uint8_t, 32>>* value, std::string* err);

// The PCR values a blob is sealed against, by PCR: a TPM 2.0 blob keeps them
// (tpm2_blob.h); a TPM 1.2 blob keeps only their digest (-EOPNOTSUPP).
int BlobPcrValues(std::string_view blob_text, std::map<unsigned, std::vector<uint8_t>>* out,
                  std::string* err);

// "7, 8" for messages.
std::string PcrList(std::span<const unsigned> pcrs);

// Unseals an API key from blob_text with the stack its kind needs, bounded by
// options.deadline: strips ONE trailing "\n" (blobs made from `echo KEY`),
// rejects an empty result.
int UnsealApiKey(std::string_view blob_text, const TpmOptions& options, Secret* out,
                 std::string* err);

// The same with a given TPM (tests): in a worker thread when a deadline is
// set, so that a TPM or tcsd that never answers cannot hold the caller.
int UnsealApiKey(std::shared_ptr<Tpm> tpm, std::string_view blob_text,
                 std::chrono::steady_clock::time_point deadline, Secret* out, std::string* err);

}  // namespace hpcs

#endif  // HPCS_TPM_TPM_H_
