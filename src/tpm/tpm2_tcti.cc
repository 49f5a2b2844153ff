#include "tpm/tpm2_tcti.h"

#include <tss2/tss2_tcti_device.h>
#include <tss2/tss2_tcti_mssim.h>
#include <tss2/tss2_tcti_swtpm.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "base/error.h"
#include "base/fileio.h"
#include "tpm/tpm2_rc.h"
#include "tpm/tpm_error.h"
#include "tpm/tpm_probe.h"

namespace hpcs {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct TctiInit {
  const char* name;
  TSS2_RC (*init)(TSS2_TCTI_CONTEXT*, size_t*, const char*);
};
constexpr TctiInit kTctis[] = {
    {"device", Tss2_Tcti_Device_Init},
    {"swtpm", Tss2_Tcti_Swtpm_Init},
    {"mssim", Tss2_Tcti_Mssim_Init},
};

const TctiInit* FindTcti(const std::string& name) {
  for (const auto& t : kTctis) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

constexpr std::string_view kNoTpm2Remedy =
    "enable the TPM in the firmware setup, and check that the kernel has its driver "
    "(tpm_tis or tpm_crb; in the initramfs, rebuild it with the hpcs dracut module)";

// A TPM 2.0 blob on a machine whose TPM the probe found to be a TPM 1.2.
std::string Tpm12Here(const TpmProbe& p) {
  std::string what = p.node.empty() ? "/sys/class/tpm/tpm0" : p.node;
  std::string msg =
      "the blob was sealed to a TPM 2.0, but this machine's TPM (" + what + ") is a TPM 1.2";
  if (p.basis == TpmProbe::Basis::kLoneDevice) {
    msg += " (no /dev/tpmrm0, which Linux 4.12 and later make for every TPM 2.0)";
  }
  msg += "; seal the API key to it with `hpcs-for-luks seal-api-key --tpm1`";
  if (p.basis == TpmProbe::Basis::kLoneDevice) {
    msg += ", or, for a TPM 2.0 under an older kernel, set tpm2_tcti = device:/dev/tpm0 in [HFL]";
  }
  return msg;
}

}  // namespace

int ParseTctiSpec(std::string_view text, TctiSpec* out, std::string* err) {
  size_t colon = text.find(':');
  std::string name(text.substr(0, colon));
  std::string conf(colon == std::string_view::npos ? "" : text.substr(colon + 1));
  if (FindTcti(name)) {
    *out = {name, conf};
    return 0;
  }
  return Fail(err, -EINVAL,
              "unknown TCTI '" + std::string(text) +
                  "' (HPCS_TPM2_TCTI or [HFL] tpm2_tcti): use device:PATH, "
                  "swtpm:host=HOST,port=PORT or mssim:host=HOST,port=PORT");
}

namespace tpm2 {

int ChooseTcti(const TpmOptions& o, TctiSpec* out, std::string* where, std::string* err) {
  if (!o.tpm2_tcti.empty()) {
    *where = "'" + o.tpm2_tcti + "'";
    return ParseTctiSpec(o.tpm2_tcti, out, err);
  }
  constexpr auto kPoll = std::chrono::milliseconds(100);
  auto until = std::min(o.deadline, SteadyClock::now() + o.device_wait);
  bool looked_again = false;
  for (;;) {
    TpmProbe p = ProbeTpm(o.fs_root);
    if (p.kind == TpmKind::kTpm1) {
      // The kernel adds /dev/tpmrm0 just after /dev/tpm0: a lone tpm0 seen
      // while the driver is still registering may yet be a TPM 2.0.
      if (p.basis == TpmProbe::Basis::kLoneDevice && !looked_again &&
          SteadyClock::now() + kPoll < until) {
        looked_again = true;
        std::this_thread::sleep_for(kPoll);
        continue;
      }
      return Fail(err, -EMEDIUMTYPE, Tpm12Here(p));
    }
    if (p.kind == TpmKind::kTpm2 && !p.node.empty()) {
      out->name = "device";
      out->conf = o.fs_root + p.node;
      *where = out->conf;
      return 0;
    }
    if (SteadyClock::now() >= until) break;
    std::this_thread::sleep_for(kPoll);
  }
  return Fail(
      err, -ENODEV,
      "no TPM 2.0 device: neither /dev/tpmrm0 nor /dev/tpm0 exists; " + std::string(kNoTpm2Remedy));
}

Tcti::~Tcti() {
  if (ctx_) {
    Tss2_Tcti_Finalize(ctx_);
    free(ctx_);
  }
}

int Tcti::Open(const TctiSpec& spec, const std::string& where, std::string* err) {
  const TctiInit* t = FindTcti(spec.name);
  if (!t) return Fail(err, -EINVAL, "unknown TCTI '" + spec.name + "'");
  size_t size = 0;
  const char* c = spec.conf.empty() ? nullptr : spec.conf.c_str();
  TSS2_RC rc = t->init(nullptr, &size, c);
  TSS2_TCTI_CONTEXT* ctx = nullptr;
  if (rc == TSS2_RC_SUCCESS) {
    ctx = static_cast<TSS2_TCTI_CONTEXT*>(calloc(1, size));
    if (!ctx) rc = TSS2_TCTI_RC_MEMORY;
  }
  if (rc == TSS2_RC_SUCCESS) rc = t->init(ctx, &size, c);
  if (rc != TSS2_RC_SUCCESS) {
    free(ctx);
    if (spec.name == "device") {
      return Fail(err, -ENODEV,
                  "cannot open the TPM 2.0 device " + spec.conf + ": " + Describe(rc) +
                      "; it needs root (or the tss group)");
    }
    return Fail(err, -ECONNREFUSED,
                "cannot reach the TPM 2.0 at " + where + ": " + Describe(rc) +
                    " (HPCS_TPM2_TCTI or [HFL] tpm2_tcti chose it)");
  }
  ctx_ = ctx;
  return 0;
}

}  // namespace tpm2
}  // namespace hpcs
