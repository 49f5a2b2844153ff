// One connection to a TPM 2.0 through tpm2-tss's ESAPI, and owners for what
// ESAPI hands out: the context, transient objects and sessions (flushed at
// scope exit, so that nothing stays loaded in a TPM without a resource
// manager), and response buffers (wiped: one may be the unsealed API key).
// The steps that sealing and unsealing share are here; each reports its
// failure as a value with the remedy (tpm2_rc.h).
#ifndef HPCS_TPM_TPM2_SESSION_H_
#define HPCS_TPM_TPM2_SESSION_H_

#include <tss2/tss2_esys.h>

#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "tpm/tpm.h"
#include "tpm/tpm2_blob.h"
#include "tpm/tpm2_tcti.h"

namespace hpcs::tpm2 {

// Owns an ESAPI context; declared after the Tcti it uses, so destroyed first.
class Esys {
 public:
  Esys() = default;
  ~Esys() {
    if (ctx_) Esys_Finalize(&ctx_);
  }
  Esys(const Esys&) = delete;
  Esys& operator=(const Esys&) = delete;
  TSS2_RC Init(TSS2_TCTI_CONTEXT* tcti) { return Esys_Initialize(&ctx_, tcti, nullptr); }
  ESYS_CONTEXT* get() const { return ctx_; }

 private:
  ESYS_CONTEXT* ctx_ = nullptr;
};

// Flushes a transient object or session from the TPM at scope exit.
class Flush {
 public:
  explicit Flush(const Esys& e) : e_(e) {}
  ~Flush() {
    if (h_ != ESYS_TR_NONE) Esys_FlushContext(e_.get(), h_);
  }
  Flush(const Flush&) = delete;
  Flush& operator=(const Flush&) = delete;
  ESYS_TR* out() { return &h_; }
  ESYS_TR get() const { return h_; }

 private:
  const Esys& e_;
  ESYS_TR h_ = ESYS_TR_NONE;
};

// Frees what ESAPI allocated for a response, wiping it first (it may be the
// unsealed API key).
template <typename T>
class EsysOut {
 public:
  EsysOut() = default;
  ~EsysOut() {
    if (p_) {
      explicit_bzero(p_, sizeof(T));
      Esys_Free(p_);
    }
  }
  EsysOut(const EsysOut&) = delete;
  EsysOut& operator=(const EsysOut&) = delete;
  T** out() { return &p_; }
  const T* operator->() const { return p_; }
  const T& operator*() const { return *p_; }

 private:
  T* p_ = nullptr;
};

// The TPM the options choose (tpm2_tcti.h), opened, and the commands that
// sealing and unsealing share.
class Session {
 public:
  explicit Session(const TpmOptions& o) : o_(o) {}

  int Open(std::string* err);

  // The primary key from the owner hierarchy (empty authorization), with
  // the given template.
  int CreatePrimary(const TPM2B_PUBLIC& tmpl, Flush* primary, std::string* err);

  // The name of a key CreatePrimary made: its name algorithm and the hash of
  // the public area the TPM answered with (ESAPI computes it).
  int PrimaryName(ESYS_TR primary, TPM2B_NAME* out, std::string* err);

  // The PCRs' current values in the SHA-256 bank, in the order of `pcrs`.
  int ReadPcrs(std::span<const unsigned> pcrs, std::vector<PcrValue>* out, std::string* err);

  // An HMAC session salted with the primary key, AES-128-CFB parameter
  // encryption in the given directions.
  int StartSaltedSession(ESYS_TR primary, TPMA_SESSION attrs, Flush* session, std::string* err);

  // -EMEDIUMTYPE: the TPM answered as a TPM 1.2 (LooksLikeTpm12).
  int WrongKind(TSS2_RC rc, std::string* err);

  const Esys& esys() const { return esys_; }
  const std::string& where() const { return where_; }

 private:
  const TpmOptions& o_;
  std::string where_;
  Tcti tcti_;
  Esys esys_;
};

}  // namespace hpcs::tpm2

#endif  // HPCS_TPM_TPM2_SESSION_H_
