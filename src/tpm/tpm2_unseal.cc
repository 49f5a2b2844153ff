#include "tpm/tpm2_unseal.h"

#include <cerrno>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "base/encoding.h"
#include "base/error.h"
#include "tpm/tpm2_blob.h"
#include "tpm/tpm2_rc.h"
#include "tpm/tpm2_session.h"
#include "tpm/tpm_error.h"

namespace hpcs::tpm2 {
namespace {

std::string ResealCommand(std::span<const unsigned> pcrs) {
  std::string s = "hpcs-for-luks seal-api-key --tpm2";
  for (unsigned pcr : pcrs) s += " --pcr " + std::to_string(pcr);
  return s + " < api-key.txt";
}

// After TPM2_RC_POLICY_FAIL: which PCRs differ from the values sealed against.
int PcrChanged(Session* s, const Tpm2Blob& blob, TSS2_RC rc, std::string* err) {
  std::vector<PcrValue> now;
  if (int r = s->ReadPcrs(blob.pcrs, &now, err)) return r;
  std::vector<unsigned> changed;
  std::string detail;
  for (size_t i = 0; i < blob.pcrs.size(); ++i) {
    if (now[i] == blob.pcr_values[i]) continue;
    changed.push_back(blob.pcrs[i]);
    detail += "; PCR " + std::to_string(blob.pcrs[i]) + " was " +
              HexEncode(blob.pcr_values[i]).substr(0, 16) + "..., is " +
              HexEncode(now[i]).substr(0, 16) + "...";
  }
  if (changed.empty()) {
    return Fail(err, -EBADMSG,
                "the TPM refused to unseal the API key (" + Describe(rc) + ") although PCR " +
                    PcrList(blob.pcrs) +
                    " hold the values sealed against: the blob's object does not match its "
                    "policy, the blob is corrupt; " +
                    std::string(kResealHint));
  }
  return Fail(err, -EKEYREJECTED,
              std::string("the TPM refused to unseal the API key: ") +
                  (changed.size() == 1 ? "PCR " : "PCRs ") + PcrList(changed) +
                  " (SHA-256) changed since sealing" + detail +
                  ". If that change was intended (a firmware, boot-loader, kernel or "
                  "command-line update), reseal once the new state has booted: `" +
                  ResealCommand(blob.pcrs) +
                  "`, then rebuild the initramfs; otherwise find out what changed the boot "
                  "chain");
}

// The primary key made now must be the one the blob was sealed under (whose
// name it records): else what answered TPM2_CreatePrimary holds the key that
// the session would be salted with, and could read the API key on its way
// back. Nothing more is sent then. A blob sealed before the name was
// recorded goes on without the check (BlobShortcomings says so).
int CheckPrimaryName(Session* s, ESYS_TR primary, const Tpm2Blob& blob, std::string* err) {
  const TPM2B_NAME& sealed = blob.primary_name;
  if (sealed.size == 0) return 0;
  TPM2B_NAME now{};
  if (int rc = s->PrimaryName(primary, &now, err)) return rc;
  if (now.size == sealed.size && memcmp(now.name, sealed.name, now.size) == 0) return 0;
  return Fail(err, -EACCES,
              "the primary key the TPM made is not the one the API key was sealed under (its "
              "name was " +
                  HexEncode({sealed.name, sealed.size}).substr(0, 20) + "..., is " +
                  HexEncode({now.name, now.size}).substr(0, 20) +
                  "...), so nothing was sent to it: the blob was sealed on another machine, or "
                  "before this TPM's owner hierarchy was cleared (then " +
                  std::string(kResealHint) +
                  "), or something between this machine and its TPM answers in its place");
}

// Loads the blob's sealed object under the primary key. A TPM that refuses
// the object's parts (not a warning, not its own state) says that the blob
// is not for this TPM, or corrupt.
int LoadSealedObject(Session* s, ESYS_TR primary, const Tpm2Blob& blob, Flush* object,
                     std::string* err) {
  TSS2_RC rc = Esys_Load(s->esys().get(), primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                         &blob.private_area, &blob.public_area, object->out());
  if (rc == TSS2_RC_SUCCESS) return 0;
  TSS2_RC code = TpmCode(rc);
  if (IsTpmLayer(rc) && !(code & TPM2_RC_WARN) && code != TPM2_RC_FAILURE &&
      code != TPM2_RC_HIERARCHY && code != TPM2_RC_INITIALIZE) {
    return Fail(err, -EBADMSG,
                "the TPM cannot load the sealed object of the blob's public and private "
                "parts: " +
                    Describe(rc) +
                    "; the blob was sealed on another machine, or before this TPM's owner "
                    "hierarchy was cleared, or its private part is corrupt; " +
                    std::string(kResealHint));
  }
  return CommonError(rc, "loading the sealed object", s->where(), err);
}

// A policy session that has run TPM2_PolicyPCR over the blob's PCRs with
// their current values: it opens the object only if they are the sealed ones.
int StartPcrPolicy(Session* s, const Tpm2Blob& blob, Flush* policy, std::string* err) {
  TPMT_SYM_DEF no_sym{};
  no_sym.algorithm = TPM2_ALG_NULL;
  TSS2_RC rc = Esys_StartAuthSession(s->esys().get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                     ESYS_TR_NONE, ESYS_TR_NONE, nullptr, TPM2_SE_POLICY, &no_sym,
                                     TPM2_ALG_SHA256, policy->out());
  if (rc != TSS2_RC_SUCCESS) return CommonError(rc, "starting a policy session", s->where(), err);
  TPM2B_DIGEST any{};  // empty: the PCRs' current values
  TPML_PCR_SELECTION sel = PcrSelection(blob.pcrs);
  rc = Esys_PolicyPCR(s->esys().get(), policy->get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                      &any, &sel);
  if (rc != TSS2_RC_SUCCESS) return CommonError(rc, "applying the PCR policy", s->where(), err);
  return 0;
}

}  // namespace

int Unseal(const TpmOptions& o, std::string_view blob_text, Secret* out, std::string* err) {
  Tpm2Blob blob;
  if (int rc = ParseTpm2Blob(blob_text, &blob, err)) return rc;
  Session s(o);
  if (int rc = s.Open(err)) return rc;
  Flush primary(s.esys());
  if (int rc = s.CreatePrimary(blob.primary_template, &primary, err)) return rc;
  if (int rc = CheckPrimaryName(&s, primary.get(), blob, err)) return rc;
  Flush object(s.esys());
  if (int rc = LoadSealedObject(&s, primary.get(), blob, &object, err)) return rc;
  Flush hmac(s.esys());
  if (int rc = s.StartSaltedSession(primary.get(), TPMA_SESSION_ENCRYPT, &hmac, err)) return rc;
  Flush policy(s.esys());
  if (int rc = StartPcrPolicy(&s, blob, &policy, err)) return rc;

  EsysOut<TPM2B_SENSITIVE_DATA> data;
  TSS2_RC rc =
      Esys_Unseal(s.esys().get(), object.get(), policy.get(), hmac.get(), ESYS_TR_NONE, data.out());
  if (rc != TSS2_RC_SUCCESS) {
    if (TpmCode(rc) == TPM2_RC_POLICY_FAIL) return PcrChanged(&s, blob, rc, err);
    return CommonError(rc, "unsealing", s.where(), err);
  }
  *out = Secret(data->buffer, data->size);
  return 0;
}

}  // namespace hpcs::tpm2
