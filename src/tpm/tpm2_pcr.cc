#include "tpm/tpm2_pcr.h"

#include <tss2/tss2_esys.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "base/error.h"
#include "tpm/tpm2_blob.h"
#include "tpm/tpm2_rc.h"
#include "tpm/tpm2_session.h"

namespace hpcs::tpm2 {

int ReadPcr(const TpmOptions& options, unsigned pcr, std::vector<uint8_t>* value,
            std::string* err) {
  if (pcr > kMaxTpm2Pcr) {
    return Fail(err, -EINVAL, "PCR " + std::to_string(pcr) + " is out of range (0 to 23)");
  }
  Session s(options);
  if (int rc = s.Open(err)) return rc;
  std::vector<PcrValue> values;
  const unsigned one[] = {pcr};
  if (int rc = s.ReadPcrs(one, &values, err)) return rc;
  value->assign(values[0].begin(), values[0].end());
  return 0;
}

int ExtendPcr(const TpmOptions& options, unsigned pcr, std::span<const uint8_t> digest,
              std::string* err) {
  if (pcr > kMaxTpm2Pcr || digest.size() != sizeof(PcrValue)) {
    return Fail(err, -EINVAL,
                "extending PCR " + std::to_string(pcr) + ": a 32-byte SHA-256 digest is needed");
  }
  Session s(options);
  if (int rc = s.Open(err)) return rc;
  TPML_DIGEST_VALUES values{};
  values.count = 1;
  values.digests[0].hashAlg = TPM2_ALG_SHA256;
  std::copy(digest.begin(), digest.end(), values.digests[0].digest.sha256);
  TSS2_RC rc = Esys_PCR_Extend(s.esys().get(), ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, &values);
  if (rc == TSS2_RC_SUCCESS) return 0;
  if (LooksLikeTpm12(rc)) return s.WrongKind(rc, err);
  return CommonError(rc, "extending PCR " + std::to_string(pcr), s.where(), err);
}

}  // namespace hpcs::tpm2
