#include "tpm/tpm_probe.h"

#include <sys/stat.h>

#include "base/fileio.h"
#include "base/strutil.h"

namespace hpcs {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// "1", "2", or "" when sysfs does not say (a kernel before 5.6, no /sys).
std::string SysfsVersion(const std::string& root) {
  std::string v;
  if (ReadRegularFile(root + "/sys/class/tpm/tpm0/tpm_version_major", 16, &v, nullptr, nullptr) <
      0) {
    return "";
  }
  return std::string(Trim(v));
}

}  // namespace

// The kernel's own word comes first: tpm_version_major (Linux 5.6, 2020).
// Without it, /dev/tpmrm0 means a TPM 2.0: the kernel makes that resource
// manager node for TPM 2.0 chips only (Linux 4.12, 2017). So a /dev/tpm0 with
// neither is a TPM 1.2 on every kernel since 4.12 (Debian 10 ships 4.19); it
// is tried with trousers' tcsd, which opens /dev/tpm0 itself. A TPM 2.0 on an
// older kernel is reached by naming it: [HFL] tpm2_tcti = device:/dev/tpm0.
TpmProbe ProbeTpm(const std::string& root) {
  TpmProbe p;
  const bool rm = Exists(root + "/dev/tpmrm0");
  const bool dev = Exists(root + "/dev/tpm0");
  const std::string v = SysfsVersion(root);
  if (v == "1" || v == "2") {
    p.kind = v == "1" ? TpmKind::kTpm1 : TpmKind::kTpm2;
    p.basis = TpmProbe::Basis::kSysfs;
  } else if (rm) {
    p.kind = TpmKind::kTpm2;
    p.basis = TpmProbe::Basis::kResourceManager;
  } else if (dev) {
    p.kind = TpmKind::kTpm1;
    p.basis = TpmProbe::Basis::kLoneDevice;
  }
  if (p.kind == TpmKind::kTpm2 && (rm || dev)) p.node = rm ? "/dev/tpmrm0" : "/dev/tpm0";
  if (p.kind == TpmKind::kTpm1 && dev) p.node = "/dev/tpm0";
  return p;
}

}  // namespace hpcs
