// The TPM 1.2 blob: the file format of tpm-tools' tpm_sealdata /
// tpm_unsealdata, and its AES part. Pure code: no TPM, no trousers.
//
// The format, as tpm_sealdata writes it (base64 in lines of 64 characters,
// every line ending in "\n"):
//
//   -----BEGIN TSS-----
//   -----TSS KEY-----
//   <base64: TPM key blob of a 2048-bit non-migratable storage key made under
//    the SRK; usage secret "password">
//   -----ENC KEY-----
//   Symmetric Key: AES-256-CBC
//   <base64: TPM_STORED_DATA from Tspi_Data_Seal under that key, sealed to the
//    chosen PCRs, usage secret "password"; unseals to a 32-byte AES key>
//   -----ENC DAT-----
//   <base64: the data, AES-256-CBC, IV "IBM SEALIBM SEAL", PKCS#7 padding>
//   -----END TSS-----
#ifndef HPCS_TPM_TPM1_BLOB_H_
#define HPCS_TPM_TPM1_BLOB_H_

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "tpm/tpm.h"  // kMaxSealedBlobSize

namespace hpcs {

inline constexpr std::string_view kTpm1BlobHeader = "-----BEGIN TSS-----";

// The three binary sections of a sealed-data file. None of them is secret
// on its own (the AES key is sealed; enc_data is ciphertext).
struct SealedBlob {
  std::vector<unsigned char> tss_key;   // "TSS KEY": storage key blob
  std::vector<unsigned char> enc_key;   // "ENC KEY": sealed AES-256 key
  std::vector<unsigned char> enc_data;  // "ENC DAT": the encrypted data
};

// Parses a file as tpm_sealdata writes it. Tolerates CRLF line ends, base64
// lines of any length and trailing blank lines; anything else is -EBADMSG
// (or -EFBIG past kMaxSealedBlobSize) with the bad section named in *err.
// The TPM structures in the first two sections are checked field by field:
// libtspi unmarshals them without bounds checks, and tcsd 0.3.15 dies on a
// truncated key blob.
int ParseSealedBlob(std::string_view text, SealedBlob* out, std::string* err);

// Formats the sections byte for byte as tpm_sealdata does (tpm_unsealdata
// locates the sections by arithmetic on that exact layout).
std::string FormatSealedBlob(const SealedBlob& blob);

// AES-256-CBC, IV "IBM SEALIBM SEAL", PKCS#7 padding. aes_key must be 32
// bytes. On success *out holds the result.
inline constexpr size_t kSealedDataKeySize = 32;
int EncryptSealedData(const Secret& aes_key, const Secret& plain, std::vector<unsigned char>* out,
                      std::string* err);
int DecryptSealedData(const Secret& aes_key, std::span<const unsigned char> cipher, Secret* out,
                      std::string* err);

}  // namespace hpcs

#endif  // HPCS_TPM_TPM1_BLOB_H_
