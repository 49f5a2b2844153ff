// What the TPM files share for reporting errors: every failure is a negative
// errno value with a message for the user in *err (see tpm.h for the codes).
#ifndef HPCS_TPM_TPM_ERROR_H_
#define HPCS_TPM_TPM_ERROR_H_

#include <string>
#include <string_view>
#include <utility>

#include "base/error.h"

namespace hpcs {

// The TPM files' name for Fail (error.h): sets *err (when given), returns rc.
inline int TpmFail(std::string* err, int rc, std::string msg) {
  return Fail(err, rc, std::move(msg));
}

// The remedy for a blob this machine cannot use.
inline constexpr std::string_view kResealHint =
    "reseal the API key on this machine with `hpcs-for-luks seal-api-key`";

}  // namespace hpcs

#endif  // HPCS_TPM_TPM_ERROR_H_
