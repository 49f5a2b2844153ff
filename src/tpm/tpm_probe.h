// Which TPM this machine has: the one answer that sealing (which stack to
// seal with, DetectTpmKind) and unsealing a TPM 2.0 blob (which device node
// to open, tpm2::ChooseTcti) both use. A configured TCTI is not asked about
// here: it names a TPM 2.0 and its callers take it first.
#ifndef HPCS_TPM_TPM_PROBE_H_
#define HPCS_TPM_TPM_PROBE_H_

#include <optional>
#include <string>

#include "tpm/tpm.h"

namespace hpcs {

struct TpmProbe {
  // What the answer rests on, in the order it is asked.
  enum class Basis {
    kNone,             // no device node and no version: no TPM (yet)
    kSysfs,            // /sys/class/tpm/tpm0/tpm_version_major (Linux 5.6 and later)
    kResourceManager,  // /dev/tpmrm0, which the kernel makes for a TPM 2.0 only
    kLoneDevice,       // /dev/tpm0 without either of the above: a TPM 1.2
  };
  std::optional<TpmKind> kind;  // nullopt: no TPM
  Basis basis = Basis::kNone;
  // The node to open, below the probed root: a TPM 2.0's /dev/tpmrm0, else its
  // /dev/tpm0; a TPM 1.2's /dev/tpm0 (tcsd's). Empty: no node (yet).
  std::string node;
};

// Looks at fs_root + /sys/class/tpm/tpm0/tpm_version_major, /dev/tpmrm0 and
// /dev/tpm0 (fs_root is empty on a real system; tests give a fake tree).
TpmProbe ProbeTpm(const std::string& fs_root);

}  // namespace hpcs

#endif  // HPCS_TPM_TPM_PROBE_H_
