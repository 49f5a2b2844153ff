// Which TPM 2.0 to talk to, and the TCTI (tpm2-tss's transport) that reaches
// it: the configured one (TpmOptions::tpm2_tcti, in tpm2-tools' syntax), else
// the kernel's device, which may still be appearing at boot.
#ifndef HPCS_TPM_TPM2_TCTI_H_
#define HPCS_TPM_TPM2_TCTI_H_

#include <tss2/tss2_tcti.h>

#include <string>
#include <string_view>

#include "tpm/tpm.h"

namespace hpcs {

// A TCTI string in tpm2-tools' syntax, split: "swtpm:port=2321" ->
// {"swtpm", "port=2321"}; "device" -> {"device", ""}. Only the TCTIs linked
// in are accepted: device, swtpm, mssim.
struct TctiSpec {
  std::string name;
  std::string conf;
};
int ParseTctiSpec(std::string_view text, TctiSpec* out, std::string* err);

namespace tpm2 {

// Which TCTI to open: the configured one, else the kernel's device that
// ProbeTpm (tpm_probe.h) finds (/dev/tpmrm0, else /dev/tpm0). Waits up to
// options.device_wait for the device node (never past the deadline);
// -EMEDIUMTYPE when the probe finds a TPM 1.2. *where names the TPM for
// messages.
int ChooseTcti(const TpmOptions& options, TctiSpec* out, std::string* where, std::string* err);

// Owns a TCTI context (tpm2-tss leaves the allocation to the caller).
class Tcti {
 public:
  Tcti() = default;
  ~Tcti();
  Tcti(const Tcti&) = delete;
  Tcti& operator=(const Tcti&) = delete;

  // Opens the TCTI of a spec that ChooseTcti gave; the message names `where`.
  int Open(const TctiSpec& spec, const std::string& where, std::string* err);
  TSS2_TCTI_CONTEXT* get() const { return ctx_; }

 private:
  TSS2_TCTI_CONTEXT* ctx_ = nullptr;
};

}  // namespace tpm2
}  // namespace hpcs

#endif  // HPCS_TPM_TPM2_TCTI_H_
