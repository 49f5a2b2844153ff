// TPM 1.2 sealing of the API key, in-process through trousers' libtspi
// (talking to tcsd), in the file format of tpm-tools' tpm_sealdata
// (tpm1_blob.h), so blobs made by `tpm_sealdata -z` unseal here and ours
// with `tpm_unsealdata -z`.
//
// The SRK is used with the well-known secret (20 zero bytes, SHA-1 mode), as
// after `tpm_takeownership -z`; the storage key and sealed data carry
// tpm-tools' usage secret. Each call opens and closes its own TSS context;
// libtspi finds tcsd through TSS_TCSD_HOSTNAME / TSS_TCSD_PORT.
#ifndef HPCS_TPM_TPM1_H_
#define HPCS_TPM_TPM1_H_

#include <memory>

#include "tpm/tpm.h"

namespace hpcs {

std::unique_ptr<Tpm> MakeTpm1(const TpmOptions& options = TpmOptions());

}  // namespace hpcs

#endif  // HPCS_TPM_TPM1_H_
