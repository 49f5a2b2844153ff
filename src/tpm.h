// TPM 1.2 sealing of small secrets (the Key Protect API key) in the file
// format of tpm-tools' tpm_sealdata / tpm_unsealdata, done in-process through
// trousers' libtspi (talking to tcsd) and mbedTLS for the AES part.
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
//
// The SRK is used with the well-known secret (20 zero bytes, SHA-1 mode), as
// after `tpm_takeownership -z`.
#ifndef HPCS_TPM_H_
#define HPCS_TPM_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "secret.h"

namespace hpcs {

// Return codes of Tpm::Unseal / Tpm::Seal / UnsealApiKey (negative errno
// values; *err always says what happened and what to do):
//   -EINVAL        bad argument (PCR index out of range)
//   -EFBIG         blob larger than kMaxSealedBlobSize
//   -EBADMSG       blob malformed (the message names the bad section)
//   -ECONNREFUSED  tcsd not reachable
//   -ENOKEY        TPM not owned / SRK unknown to tcsd
//   -EKEYREJECTED  PCR values changed since sealing (TPM_E_WRONGPCRVAL)
//   -EACCES        an authorization failed (SRK secret not well-known,
//                  blob not made with tpm-tools' usage secret)
//   -ENODEV        TPM disabled, deactivated or failed
//   -EBUSY         TPM dictionary-attack lockout active
//   -ENODATA       the unsealed API key is empty (UnsealApiKey only)
//   -EIO           any other TSS/TPM error (its code and text are in *err)
class Tpm {  // interface so tests can substitute one
 public:
  virtual ~Tpm() = default;
  // blob_text: the whole file as tpm_sealdata writes it. On success *out
  // holds the data.
  virtual int Unseal(std::string_view blob_text, Secret* out, std::string* err) = 0;
  // Seals data to the current values of the given PCRs; *blob_text gets the
  // file contents in tpm_sealdata's format, so tpm_unsealdata can read it.
  virtual int Seal(const Secret& data, std::span<const unsigned> pcrs, std::string* blob_text,
                   std::string* err) = 0;
};

// Talks to tcsd (libtspi honours TSS_TCSD_HOSTNAME / TSS_TCSD_PORT). Each
// call opens and closes its own TSS context.
std::unique_ptr<Tpm> MakeTrousersTpm();

// Unseals an API key: strips ONE trailing "\n" (blobs made from `echo KEY`),
// rejects an empty result.
int UnsealApiKey(Tpm& tpm, std::string_view blob_text, Secret* out, std::string* err);

// ---- The file format, exposed for tests and tools; no TPM involved. ----

inline constexpr size_t kMaxSealedBlobSize = 64 * 1024;

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
int ParseSealedBlob(std::string_view text, SealedBlob* out, std::string* err);

// Formats the sections byte for byte as tpm_sealdata does (tpm_unsealdata
// locates the sections by arithmetic on that exact layout).
std::string FormatSealedBlob(const SealedBlob& blob);

// AES-256-CBC, IV "IBM SEALIBM SEAL", PKCS#7 padding. aes_key must be 32
// bytes. On success *out holds the result.
int EncryptSealedData(const Secret& aes_key, const Secret& plain, std::vector<unsigned char>* out,
                      std::string* err);
int DecryptSealedData(const Secret& aes_key, std::span<const unsigned char> cipher, Secret* out,
                      std::string* err);

}  // namespace hpcs

#endif  // HPCS_TPM_H_
