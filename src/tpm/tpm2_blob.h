// The TPM 2.0 blob: the API key sealed by tpm2.cc, as self-describing text.
// Pure code: no TPM (tpm2-tss's marshalling library only).
//
//   -----BEGIN HPCS TPM2 SEALED DATA-----
//   version: 1
//   hierarchy: owner
//   pcr-bank: sha256
//   pcrs: 7 8
//   pcr 7: <64 hex digits: the PCR's value when sealed>
//   pcr 8: <...>
//   primary-template: <base64 of a TPM2B_PUBLIC: the template of the primary
//                      key the object lives under, made again on each use>
//   primary-name: <hex of the TPM2B_NAME the TPM gave that key when sealing:
//                  unsealing goes on only with the same key; optional, as
//                  blobs sealed before issue 22 lack it>
//   public: <base64 of the sealed object's TPM2B_PUBLIC>
//   private: <base64 of the sealed object's TPM2B_PRIVATE>
//   -----END HPCS TPM2 SEALED DATA-----
//
// The object's policy is TPM2_PolicyPCR over the listed PCRs of the SHA-256
// bank; the values sealed against are kept so that a failed unseal can name
// the PCRs that changed. None of it is secret: the data is encrypted under
// the primary key, which never leaves the TPM.
#ifndef HPCS_TPM_TPM2_BLOB_H_
#define HPCS_TPM_TPM2_BLOB_H_

#include <tss2/tss2_tpm2_types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hpcs {

inline constexpr std::string_view kTpm2BlobHeader = "-----BEGIN HPCS TPM2 SEALED DATA-----";
inline constexpr std::string_view kTpm2BlobFooter = "-----END HPCS TPM2 SEALED DATA-----";
inline constexpr size_t kMaxTpm2BlobSize = 16 * 1024;
inline constexpr unsigned kMaxTpm2Pcr = 23;

using PcrValue = std::array<uint8_t, 32>;  // one SHA-256 PCR

struct Tpm2Blob {
  std::vector<unsigned> pcrs;        // ascending, no repeats, at least one
  std::vector<PcrValue> pcr_values;  // pcr_values[i] is the value of pcrs[i]
  TPM2B_PUBLIC primary_template{};
  TPM2B_NAME primary_name{};  // size 0: not recorded (an older blob)
  TPM2B_PUBLIC public_area{};
  TPM2B_PRIVATE private_area{};
};

// Parses and checks a blob: every part present once, each TPM structure
// unmarshals whole, the primary template is a storage key, the object is a
// sealed data object that only its policy can open, and that policy is the
// PolicyPCR digest of the listed PCR values. -EBADMSG (-EFBIG past
// kMaxTpm2BlobSize) names the bad part in *err. Tolerates CRLF line ends and
// trailing blank lines.
int ParseTpm2Blob(std::string_view text, Tpm2Blob* out, std::string* err);

std::string FormatTpm2Blob(const Tpm2Blob& blob);

// The SHA-256 bank selection of these PCRs (sizeofSelect 3: PCRs 0-23).
TPML_PCR_SELECTION PcrSelection(std::span<const unsigned> pcrs);

// The policy digest that TPM2_PolicyPCR gives a fresh SHA-256 policy session
// when the PCRs hold these values:
//   SHA256(0^32 || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || SHA256(values))
PcrValue PcrPolicyDigest(std::span<const unsigned> pcrs, std::span<const PcrValue> values);

// 64 hex digits (either case) to a SHA-256 value.
bool ParsePcrValue(std::string_view hex, PcrValue* out);

}  // namespace hpcs

#endif  // HPCS_TPM_TPM2_BLOB_H_
