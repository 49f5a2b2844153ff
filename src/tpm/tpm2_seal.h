// Sealing to a TPM 2.0 (the scheme is described in tpm2.h): the storage key
// template of the primary, the sealed object's template with its PCR policy,
// and TPM2_Create under a salted session with the data encrypted on its way
// to the TPM.
#ifndef HPCS_TPM_TPM2_SEAL_H_
#define HPCS_TPM_TPM2_SEAL_H_

#include <span>
#include <string>

#include "base/secret.h"
#include "tpm/tpm.h"

namespace hpcs::tpm2 {

// Tpm::Seal of the TPM 2.0 (MakeTpm2): checks the arguments before it opens
// the TPM; *blob_text gets a blob in tpm2_blob.h's format.
int Seal(const TpmOptions& options, const Secret& data, std::span<const unsigned> pcrs,
         std::string* blob_text, std::string* err);

}  // namespace hpcs::tpm2

#endif  // HPCS_TPM_TPM2_SEAL_H_
