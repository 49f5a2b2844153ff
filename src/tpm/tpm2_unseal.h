// Unsealing from a TPM 2.0 (the scheme is described in tpm2.h): the blob's
// object loaded under the primary key made again from its template, opened
// through a TPM2_PolicyPCR session, the data coming back encrypted; and when
// the policy fails, which PCRs changed since sealing.
#ifndef HPCS_TPM_TPM2_UNSEAL_H_
#define HPCS_TPM_TPM2_UNSEAL_H_

#include <string>
#include <string_view>

#include "base/secret.h"
#include "tpm/tpm.h"

namespace hpcs::tpm2 {

// Tpm::Unseal of the TPM 2.0 (MakeTpm2): blob_text in tpm2_blob.h's format,
// checked before the TPM is opened.
int Unseal(const TpmOptions& options, std::string_view blob_text, Secret* out, std::string* err);

}  // namespace hpcs::tpm2

#endif  // HPCS_TPM_TPM2_UNSEAL_H_
