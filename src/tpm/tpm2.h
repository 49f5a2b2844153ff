// TPM 2.0 sealing of the API key, in-process through tpm2-tss's ESAPI: no
// daemon, straight to the kernel's resource manager (/dev/tpmrm0) or to the
// TCTI given in TpmOptions::tpm2_tcti.
//
// Each use derives the same primary key from the owner hierarchy (empty
// owner authorization) with a standard storage key template: ECC NIST P-256,
// AES-128-CFB, restricted decryption, noDA, empty authorization, as TCG's
// SRK template; nothing persistent is provisioned. The sealed object under
// it carries the API key and opens only through TPM2_PolicyPCR over the
// chosen PCRs of the SHA-256 bank (no userWithAuth; noDA, as it has no
// password to guess). Create and Unseal run with an HMAC session salted
// with the primary key, with parameter encryption (the API key goes to the
// TPM encrypted and comes back encrypted: never in clear on the bus).
// The blob (tpm2_blob.h) records the template, the object's public and
// private parts and the PCR values sealed against.
//
// The parts: tpm2_tcti.h (which TPM, through which TCTI), tpm2_session.h
// (one ESAPI connection and the steps both directions share), tpm2_rc.h
// (response codes as messages with remedies), tpm2_seal.h, tpm2_unseal.h.
#ifndef HPCS_TPM_TPM2_H_
#define HPCS_TPM_TPM2_H_

#include <cstddef>
#include <memory>

#include "tpm/tpm.h"

namespace hpcs {

// At most this many bytes can be sealed (a TPM's MAX_SYM_DATA).
inline constexpr size_t kMaxTpm2SealedData = 128;

std::unique_ptr<Tpm> MakeTpm2(const TpmOptions& options);

}  // namespace hpcs

#endif  // HPCS_TPM_TPM2_H_
