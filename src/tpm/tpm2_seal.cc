#include "tpm/tpm2_seal.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "tpm/tpm2.h"
#include "tpm/tpm2_blob.h"
#include "tpm/tpm2_rc.h"
#include "tpm/tpm2_session.h"

namespace hpcs::tpm2 {
namespace {

// TCG's storage root key template, ECC NIST P-256.
TPM2B_PUBLIC SrkTemplate() {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.type = TPM2_ALG_ECC;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                       TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  TPMS_ECC_PARMS& e = p.parameters.eccDetail;
  e.symmetric.algorithm = TPM2_ALG_AES;
  e.symmetric.keyBits.aes = 128;
  e.symmetric.mode.aes = TPM2_ALG_CFB;
  e.scheme.scheme = TPM2_ALG_NULL;
  e.curveID = TPM2_ECC_NIST_P256;
  e.kdf.scheme = TPM2_ALG_NULL;
  return t;
}

TPM2B_PUBLIC SealedObjectTemplate(const PcrValue& policy) {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.type = TPM2_ALG_KEYEDHASH;
  p.nameAlg = TPM2_ALG_SHA256;
  // No userWithAuth: only the policy opens it. No sensitiveDataOrigin: the
  // data is ours.
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA;
  p.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
  p.authPolicy.size = policy.size();
  std::copy(policy.begin(), policy.end(), p.authPolicy.buffer);
  return t;
}

// The PCRs to seal to (ascending, no repeats), once the arguments are known
// to be sealable: at least one PCR, all of them in range, a given value only
// for a PCR sealed to, 1 to kMaxTpm2SealedData bytes of data.
int CheckSealArguments(const TpmOptions& o, const Secret& data, std::span<const unsigned> pcr_span,
                       std::vector<unsigned>* out, std::string* err) {
  std::vector<unsigned> pcrs(pcr_span.begin(), pcr_span.end());
  std::sort(pcrs.begin(), pcrs.end());
  pcrs.erase(std::unique(pcrs.begin(), pcrs.end()), pcrs.end());
  if (pcrs.empty()) {
    return Fail(err, -EINVAL, "a TPM 2.0 seal needs at least one PCR to bind the API key to");
  }
  if (pcrs.back() > kMaxTpm2Pcr) {
    return Fail(err, -EINVAL,
                "PCR index " + std::to_string(pcrs.back()) +
                    " is out of range (a TPM 2.0 has PCRs 0 to 23)");
  }
  for (const auto& [pcr, value] : o.seal_pcr_values) {
    if (!std::binary_search(pcrs.begin(), pcrs.end(), pcr)) {
      return Fail(err, -EINVAL,
                  "a value is given for PCR " + std::to_string(pcr) + ", which is not sealed to");
    }
  }
  if (data.empty() || data.size() > kMaxTpm2SealedData) {
    return Fail(err, -EINVAL,
                "a TPM 2.0 seals 1 to " + std::to_string(kMaxTpm2SealedData) +
                    " bytes; the API key is " + std::to_string(data.size()));
  }
  *out = std::move(pcrs);
  return 0;
}

// The values to seal against: the PCRs' current values, except where the
// options give the value a PCR will hold (seal-api-key --pcr N=HEX).
int PcrValuesToSealTo(Session* s, const TpmOptions& o, Tpm2Blob* blob, std::string* err) {
  if (int rc = s->ReadPcrs(blob->pcrs, &blob->pcr_values, err)) return rc;
  for (size_t i = 0; i < blob->pcrs.size(); ++i) {
    auto it = o.seal_pcr_values.find(blob->pcrs[i]);
    if (it != o.seal_pcr_values.end()) blob->pcr_values[i] = it->second;
  }
  return 0;
}

// Creates the sealed object under the primary key; the data goes to the TPM
// encrypted (a salted session with parameter encryption). Fills the blob's
// public and private parts.
int CreateSealedObject(Session* s, ESYS_TR primary, const Secret& data, Tpm2Blob* blob,
                       std::string* err) {
  Flush session(s->esys());
  if (int rc = s->StartSaltedSession(primary, TPMA_SESSION_DECRYPT, &session, err)) return rc;
  TPM2B_SENSITIVE_CREATE sensitive{};
  sensitive.sensitive.data.size = static_cast<UINT16>(data.size());
  memcpy(sensitive.sensitive.data.buffer, data.data(), data.size());
  TPM2B_PUBLIC tmpl = SealedObjectTemplate(PcrPolicyDigest(blob->pcrs, blob->pcr_values));
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcrs{};
  EsysOut<TPM2B_PRIVATE> priv;
  EsysOut<TPM2B_PUBLIC> pub;
  EsysOut<TPM2B_CREATION_DATA> creation;
  EsysOut<TPM2B_DIGEST> hash;
  EsysOut<TPMT_TK_CREATION> ticket;
  TSS2_RC rc = Esys_Create(s->esys().get(), primary, session.get(), ESYS_TR_NONE, ESYS_TR_NONE,
                           &sensitive, &tmpl, &outside, &creation_pcrs, priv.out(), pub.out(),
                           creation.out(), hash.out(), ticket.out());
  explicit_bzero(&sensitive, sizeof sensitive);
  if (rc != TSS2_RC_SUCCESS) return CommonError(rc, "creating the sealed object", s->where(), err);
  blob->public_area = *pub;
  blob->private_area = *priv;
  return 0;
}

}  // namespace

int Seal(const TpmOptions& o, const Secret& data, std::span<const unsigned> pcrs,
         std::string* blob_text, std::string* err) {
  Tpm2Blob blob;
  if (int rc = CheckSealArguments(o, data, pcrs, &blob.pcrs, err)) return rc;
  Session s(o);
  if (int rc = s.Open(err)) return rc;
  blob.primary_template = SrkTemplate();
  Flush primary(s.esys());
  if (int rc = s.CreatePrimary(blob.primary_template, &primary, err)) return rc;
  if (int rc = s.PrimaryName(primary.get(), &blob.primary_name, err)) return rc;
  if (int rc = PcrValuesToSealTo(&s, o, &blob, err)) return rc;
  if (int rc = CreateSealedObject(&s, primary.get(), data, &blob, err)) return rc;
  *blob_text = FormatTpm2Blob(blob);
  return 0;
}

}  // namespace hpcs::tpm2
