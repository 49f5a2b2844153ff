// TPM 2.0 response codes (TSS2_RC) for people: what a failed tpm2-tss call
// means and what to do about it. Used by every step of tpm2_session.cc,
// tpm2_seal.cc and tpm2_unseal.cc; the step's own cases come first there,
// then CommonError.
#ifndef HPCS_TPM_TPM2_RC_H_
#define HPCS_TPM_TPM2_RC_H_

#include <tss2/tss2_common.h>

#include <string>
#include <string_view>

namespace hpcs::tpm2 {

// True when the code comes from the TPM (directly or through the kernel's
// resource manager), not from a software layer of tpm2-tss.
bool IsTpmLayer(TSS2_RC rc);

// The TPM's code without the handle, session or parameter number (other
// layers' codes unchanged).
TSS2_RC TpmCode(TSS2_RC rc);

// "TSS2 error 0x922 (tpm:warn(2.0): ...)".
std::string Describe(TSS2_RC rc);

// Errors that mean the same whatever the step (a lost TCTI, lockout, failure
// mode, a disabled owner hierarchy, a TPM never started); anything else is
// -EIO "<step> failed: <Describe>". `where` names the TPM (the TCTI or the
// device) in the message.
int CommonError(TSS2_RC rc, std::string_view step, const std::string& where, std::string* err);

// A TPM 1.2 answers a TPM 2.0 command with a TPM 1.2 response (tag
// TPM_TAG_RSP_COMMAND), which the SAPI reports as a general failure, or with
// an error ESAPI cannot parse.
bool LooksLikeTpm12(TSS2_RC rc);

}  // namespace hpcs::tpm2

#endif  // HPCS_TPM_TPM2_RC_H_
