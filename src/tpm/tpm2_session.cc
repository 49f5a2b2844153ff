#include "tpm/tpm2_session.h"

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "tpm/tpm2_rc.h"

namespace hpcs::tpm2 {

int Session::Open(std::string* err) {
  TctiSpec spec;
  if (int rc = ChooseTcti(o_, &spec, &where_, err)) return rc;
  if (int rc = tcti_.Open(spec, where_, err)) return rc;
  TSS2_RC rc = esys_.Init(tcti_.get());
  if (rc != TSS2_RC_SUCCESS) return Fail(err, -EIO, "cannot start ESAPI: " + Describe(rc));
  return 0;
}

int Session::CreatePrimary(const TPM2B_PUBLIC& tmpl, Flush* primary, std::string* err) {
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcrs{};
  EsysOut<TPM2B_PUBLIC> pub;
  EsysOut<TPM2B_CREATION_DATA> creation;
  EsysOut<TPM2B_DIGEST> hash;
  EsysOut<TPMT_TK_CREATION> ticket;
  TSS2_RC rc =
      Esys_CreatePrimary(esys_.get(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                         ESYS_TR_NONE, &sensitive, &tmpl, &outside, &creation_pcrs, primary->out(),
                         pub.out(), creation.out(), hash.out(), ticket.out());
  if (rc == TSS2_RC_SUCCESS) return 0;
  if (LooksLikeTpm12(rc)) return WrongKind(rc, err);
  TSS2_RC code = TpmCode(rc);
  if (code == TPM2_RC_BAD_AUTH || code == TPM2_RC_AUTH_FAIL) {
    return Fail(err, -EACCES,
                "creating the primary key failed: " + Describe(rc) +
                    ": the TPM's owner hierarchy has a password; hpcs-for-luks (like "
                    "systemd-cryptenroll and clevis) needs it empty: clear it with "
                    "`tpm2_changeauth -c owner -p OLD`");
  }
  return CommonError(rc, "creating the primary key", where_, err);
}

int Session::PrimaryName(ESYS_TR primary, TPM2B_NAME* out, std::string* err) {
  EsysOut<TPM2B_NAME> name;
  TSS2_RC rc = Esys_TR_GetName(esys_.get(), primary, name.out());
  if (rc != TSS2_RC_SUCCESS) {
    return Fail(err, -EIO, "cannot get the primary key's name: " + Describe(rc));
  }
  *out = *name;
  return 0;
}

int Session::ReadPcrs(std::span<const unsigned> pcrs, std::vector<PcrValue>* out,
                      std::string* err) {
  std::vector<PcrValue> values(pcrs.size());
  std::vector<bool> have(pcrs.size());
  for (int round = 0; round < 24; ++round) {
    std::vector<unsigned> want;
    for (size_t i = 0; i < pcrs.size(); ++i) {
      if (!have[i]) want.push_back(pcrs[i]);
    }
    if (want.empty()) break;
    TPML_PCR_SELECTION sel = PcrSelection(want);
    UINT32 counter = 0;
    EsysOut<TPML_PCR_SELECTION> got_sel;
    EsysOut<TPML_DIGEST> got;
    TSS2_RC rc = Esys_PCR_Read(esys_.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel,
                               &counter, got_sel.out(), got.out());
    if (rc != TSS2_RC_SUCCESS) {
      if (LooksLikeTpm12(rc)) return WrongKind(rc, err);
      return CommonError(rc, "reading the PCRs", where_, err);
    }
    // The values come in the order of the returned selection.
    size_t d = 0;
    bool progress = false;
    for (UINT32 s = 0; s < got_sel->count; ++s) {
      const TPMS_PCR_SELECTION& ps = got_sel->pcrSelections[s];
      if (ps.hash != TPM2_ALG_SHA256) continue;
      for (unsigned pcr = 0; pcr < 8u * ps.sizeofSelect && pcr <= kMaxTpm2Pcr; ++pcr) {
        if (!(ps.pcrSelect[pcr / 8] & (1u << (pcr % 8)))) continue;
        if (d >= got->count || got->digests[d].size != sizeof(PcrValue)) {
          return Fail(err, -EIO, "the TPM answered TPM2_PCR_Read with a malformed list");
        }
        for (size_t i = 0; i < pcrs.size(); ++i) {
          if (pcrs[i] == pcr && !have[i]) {
            std::copy_n(got->digests[d].buffer, sizeof(PcrValue), values[i].begin());
            have[i] = true;
            progress = true;
          }
        }
        ++d;
      }
    }
    if (!progress) {
      return Fail(err, -ENODEV,
                  "the TPM has no active SHA-256 PCR bank (TPM2_PCR_Read returned none "
                  "of PCR " +
                      PcrList(want) +
                      "); activate it in the firmware setup or with "
                      "`tpm2_pcrallocate sha256:all` and reboot");
    }
  }
  *out = std::move(values);
  return 0;
}

int Session::StartSaltedSession(ESYS_TR primary, TPMA_SESSION attrs, Flush* session,
                                std::string* err) {
  TPMT_SYM_DEF sym{};
  sym.algorithm = TPM2_ALG_AES;
  sym.keyBits.aes = 128;
  sym.mode.aes = TPM2_ALG_CFB;
  TSS2_RC rc = Esys_StartAuthSession(esys_.get(), primary, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                     ESYS_TR_NONE, nullptr, TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256,
                                     session->out());
  if (rc == TSS2_RC_SUCCESS) {
    rc = Esys_TRSess_SetAttributes(esys_.get(), session->get(),
                                   attrs | TPMA_SESSION_CONTINUESESSION, 0xff);
  }
  if (rc != TSS2_RC_SUCCESS) return CommonError(rc, "starting a salted session", where_, err);
  return 0;
}

int Session::WrongKind(TSS2_RC rc, std::string* err) {
  return Fail(err, -EMEDIUMTYPE,
              "the TPM at " + where_ + " does not answer as a TPM 2.0 (" + Describe(rc) +
                  "): it is a TPM 1.2; a TPM 2.0 blob cannot be used with it: seal the API "
                  "key to it with `hpcs-for-luks seal-api-key --tpm1`");
}

}  // namespace hpcs::tpm2
