// What the TPM files share for reporting errors. Every failure is a negative
// errno value with a message for the user in *err, written with the helpers of
// base/error.h (see tpm.h for the codes).
#ifndef HPCS_TPM_TPM_ERROR_H_
#define HPCS_TPM_TPM_ERROR_H_

#include <string_view>

namespace hpcs {

// The remedy for a blob this machine cannot use.
inline constexpr std::string_view kResealHint =
    "reseal the API key on this machine with `hpcs-for-luks seal-api-key`";

}  // namespace hpcs

#endif  // HPCS_TPM_TPM_ERROR_H_
