// One PCR of a TPM 2.0's SHA-256 bank, read and extended (Tpm::ReadPcr and
// Tpm::ExtendPcr of MakeTpm2): what the TPM lock (core/tpm_lock.h) needs.
#ifndef HPCS_TPM_TPM2_PCR_H_
#define HPCS_TPM_TPM2_PCR_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tpm/tpm.h"

namespace hpcs::tpm2 {

int ReadPcr(const TpmOptions& options, unsigned pcr, std::vector<uint8_t>* value, std::string* err);

// TPM2_PCR_Extend of the SHA-256 bank only (the one our policies use), with
// the PCR's empty authorization; digest must be 32 bytes.
int ExtendPcr(const TpmOptions& options, unsigned pcr, std::span<const uint8_t> digest,
              std::string* err);

}  // namespace hpcs::tpm2

#endif  // HPCS_TPM_TPM2_PCR_H_
