#include "tpm/tpm2_tcti.h"

#include <sys/stat.h>
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

std::string Path(const TpmOptions& o, const char* p) { return o.fs_root + p; }

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// The version sysfs gives the kernel's first TPM: "1", "2" or "" (unknown).
std::string SysfsTpmVersion(const TpmOptions& o) {
  std::string v;
  if (ReadRegularFile(Path(o, "/sys/class/tpm/tpm0/tpm_version_major"), 16, &v, nullptr, nullptr) <
      0) {
    return "";
  }
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

constexpr std::string_view kNoTpm2Remedy =
    "enable the TPM in the firmware setup, and check that the kernel has its driver "
    "(tpm_tis or tpm_crb; in the initramfs, rebuild it with the hpcs dracut module)";

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
  auto until = std::min(o.deadline, SteadyClock::now() + o.device_wait);
  for (;;) {
    for (const char* dev : {"/dev/tpmrm0", "/dev/tpm0"}) {
      if (!Exists(Path(o, dev))) continue;
      if (SysfsTpmVersion(o) == "1") {
        return Fail(err, -EMEDIUMTYPE,
                    "the blob was sealed to a TPM 2.0, but this machine's TPM (" +
                        std::string(dev) +
                        ") is a TPM 1.2; seal the API key to it with "
                        "`hpcs-for-luks seal-api-key --tpm1`");
      }
      out->name = "device";
      out->conf = Path(o, dev);
      *where = out->conf;
      return 0;
    }
    if (SteadyClock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
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
