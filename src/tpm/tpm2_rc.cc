#include "tpm/tpm2_rc.h"

#include <tss2/tss2_rc.h>
#include <tss2/tss2_tpm2_types.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "base/error.h"

namespace hpcs::tpm2 {
namespace {

bool IsTctiError(TSS2_RC rc) {
  TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  return layer == TSS2_TCTI_RC_LAYER;
}

}  // namespace

bool IsTpmLayer(TSS2_RC rc) {
  TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  return layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER;
}

TSS2_RC TpmCode(TSS2_RC rc) {
  if (!IsTpmLayer(rc)) return rc;
  rc &= ~TSS2_RC_LAYER_MASK;
  return (rc & TPM2_RC_FMT1) ? (rc & (TPM2_RC_FMT1 | 0x3f)) : (rc & 0xfff);
}

std::string Describe(TSS2_RC rc) {
  char hex[16];
  snprintf(hex, sizeof hex, "0x%x", rc);
  const char* text = Tss2_RC_Decode(rc);
  return std::string("TSS2 error ") + hex + " (" + (text ? text : "unknown") + ")";
}

int CommonError(TSS2_RC rc, std::string_view step, const std::string& where, std::string* err) {
  std::string what = std::string(step) + " failed: " + Describe(rc) + ": ";
  if (IsTctiError(rc)) {
    return Fail(err, -ECONNREFUSED,
                what + "lost the TPM 2.0 at " + where + "; check that it is there and answers");
  }
  switch (TpmCode(rc)) {
    case TPM2_RC_LOCKOUT:
      return Fail(err, -EBUSY,
                  what +
                      "the TPM is in dictionary-attack lockout (too many wrong passwords "
                      "were tried on it); wait for the lockout to expire, or clear it with "
                      "`tpm2_dictionarylockout --clear-lockout` (needs the lockout "
                      "authorization)");
    case TPM2_RC_FAILURE:
      return Fail(err, -ENODEV,
                  what + "the TPM is in failure mode; check it in the firmware setup");
    case TPM2_RC_HIERARCHY:
      return Fail(err, -ENODEV,
                  what + "the TPM's owner hierarchy is disabled; enable it in the firmware setup");
    case TPM2_RC_INITIALIZE:
      return Fail(err, -ENODEV,
                  what +
                      "the TPM has not been started (TPM2_Startup); the firmware or the "
                      "kernel should do that");
    default:
      break;
  }
  return Fail(err, -EIO, what.substr(0, what.size() - 2));
}

bool LooksLikeTpm12(TSS2_RC rc) {
  return rc == TSS2_SYS_RC_GENERAL_FAILURE || rc == TSS2_SYS_RC_MALFORMED_RESPONSE ||
         (IsTpmLayer(rc) && (rc & 0xfff) == TPM2_RC_BAD_TAG);
}

}  // namespace hpcs::tpm2
