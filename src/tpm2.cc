#include "tpm2.h"

#include <sys/stat.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tcti_device.h>
#include <tss2/tss2_tcti_mssim.h>
#include <tss2/tss2_tcti_swtpm.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fileio.h"
#include "tpm2_blob.h"
#include "tpm_error.h"

namespace hpcs {
namespace {

using SteadyClock = std::chrono::steady_clock;

// ---- Response codes ----

bool IsTpmLayer(TSS2_RC rc) {
  TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  return layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER;
}

// The TPM's code without the handle, session or parameter number.
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

bool IsTctiError(TSS2_RC rc) {
  TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
  return layer == TSS2_TCTI_RC_LAYER;
}

// ---- TCTI ----

struct TctiInit {
  const char* name;
  TSS2_RC (*init)(TSS2_TCTI_CONTEXT*, size_t*, const char*);
};
constexpr TctiInit kTctis[] = {
    {"device", Tss2_Tcti_Device_Init},
    {"swtpm", Tss2_Tcti_Swtpm_Init},
    {"mssim", Tss2_Tcti_Mssim_Init},
};

// Owns a TCTI context (tpm2-tss leaves the allocation to the caller).
class Tcti {
 public:
  Tcti() = default;
  ~Tcti() {
    if (ctx_) {
      Tss2_Tcti_Finalize(ctx_);
      free(ctx_);
    }
  }
  Tcti(const Tcti&) = delete;
  Tcti& operator=(const Tcti&) = delete;

  TSS2_RC Open(const TctiInit& t, const std::string& conf) {
    size_t size = 0;
    const char* c = conf.empty() ? nullptr : conf.c_str();
    TSS2_RC rc = t.init(nullptr, &size, c);
    if (rc != TSS2_RC_SUCCESS) return rc;
    auto* ctx = static_cast<TSS2_TCTI_CONTEXT*>(calloc(1, size));
    if (!ctx) return TSS2_TCTI_RC_MEMORY;
    rc = t.init(ctx, &size, c);
    if (rc != TSS2_RC_SUCCESS) {
      free(ctx);
      return rc;
    }
    ctx_ = ctx;
    return TSS2_RC_SUCCESS;
  }
  TSS2_TCTI_CONTEXT* get() const { return ctx_; }

 private:
  TSS2_TCTI_CONTEXT* ctx_ = nullptr;
};

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

// Which TCTI to open: the configured one, else the kernel's device. Waits up
// to options.device_wait for the device node (bounded by the deadline).
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

// Errors that mean the same whatever the step.
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

// A TPM 1.2 answers a TPM 2.0 command with a TPM 1.2 response (tag
// TPM_TAG_RSP_COMMAND), which the SAPI reports as a general failure, or with
// an error ESAPI cannot parse.
bool LooksLikeTpm12(TSS2_RC rc) {
  return rc == TSS2_SYS_RC_GENERAL_FAILURE || rc == TSS2_SYS_RC_MALFORMED_RESPONSE ||
         (IsTpmLayer(rc) && (rc & 0xfff) == TPM2_RC_BAD_TAG);
}

// ---- Templates ----

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

// ---- One connection to the TPM ----

class Session {
 public:
  explicit Session(const TpmOptions& o) : o_(o) {}

  int Open(std::string* err) {
    TctiSpec spec;
    if (int rc = ChooseTcti(o_, &spec, &where_, err)) return rc;
    const TctiInit* init = nullptr;
    for (const auto& t : kTctis) {
      if (spec.name == t.name) init = &t;
    }
    if (!init) return Fail(err, -EINVAL, "unknown TCTI '" + spec.name + "'");
    TSS2_RC rc = tcti_.Open(*init, spec.conf);
    if (rc != TSS2_RC_SUCCESS) {
      if (spec.name == "device") {
        return Fail(err, -ENODEV,
                    "cannot open the TPM 2.0 device " + spec.conf + ": " + Describe(rc) +
                        "; it needs root (or the tss group)");
      }
      return Fail(err, -ECONNREFUSED,
                  "cannot reach the TPM 2.0 at " + where_ + ": " + Describe(rc) +
                      " (HPCS_TPM2_TCTI or [HFL] tpm2_tcti chose it)");
    }
    rc = esys_.Init(tcti_.get());
    if (rc != TSS2_RC_SUCCESS) return Fail(err, -EIO, "cannot start ESAPI: " + Describe(rc));
    return 0;
  }

  // The primary key from the owner hierarchy, with the given template.
  int CreatePrimary(const TPM2B_PUBLIC& tmpl, Flush* primary, std::string* err) {
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION creation_pcrs{};
    EsysOut<TPM2B_PUBLIC> pub;
    EsysOut<TPM2B_CREATION_DATA> creation;
    EsysOut<TPM2B_DIGEST> hash;
    EsysOut<TPMT_TK_CREATION> ticket;
    TSS2_RC rc =
        Esys_CreatePrimary(esys_.get(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, &sensitive, &tmpl, &outside, &creation_pcrs,
                           primary->out(), pub.out(), creation.out(), hash.out(), ticket.out());
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

  // The PCRs' current values in the SHA-256 bank.
  int ReadPcrs(std::span<const unsigned> pcrs, std::vector<PcrValue>* out, std::string* err) {
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

  // An HMAC session salted with the primary key, AES-128-CFB parameter
  // encryption in the given directions.
  int StartSaltedSession(ESYS_TR primary, TPMA_SESSION attrs, Flush* session, std::string* err) {
    TPMT_SYM_DEF sym{};
    sym.algorithm = TPM2_ALG_AES;
    sym.keyBits.aes = 128;
    sym.mode.aes = TPM2_ALG_CFB;
    TSS2_RC rc = Esys_StartAuthSession(esys_.get(), primary, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, ESYS_TR_NONE, nullptr, TPM2_SE_HMAC, &sym,
                                       TPM2_ALG_SHA256, session->out());
    if (rc == TSS2_RC_SUCCESS) {
      rc = Esys_TRSess_SetAttributes(esys_.get(), session->get(),
                                     attrs | TPMA_SESSION_CONTINUESESSION, 0xff);
    }
    if (rc != TSS2_RC_SUCCESS) return CommonError(rc, "starting a salted session", where_, err);
    return 0;
  }

  int WrongKind(TSS2_RC rc, std::string* err) {
    return Fail(err, -EMEDIUMTYPE,
                "the TPM at " + where_ + " does not answer as a TPM 2.0 (" + Describe(rc) +
                    "): it is a TPM 1.2; a TPM 2.0 blob cannot be used with it: seal the API "
                    "key to it with `hpcs-for-luks seal-api-key --tpm1`");
  }

  const Esys& esys() const { return esys_; }
  const std::string& where() const { return where_; }

 private:
  const TpmOptions& o_;
  std::string where_;
  Tcti tcti_;
  Esys esys_;
};

std::string ResealCommand(std::span<const unsigned> pcrs) {
  std::string s = "hpcs-for-luks seal-api-key --tpm2";
  for (unsigned pcr : pcrs) s += " --pcr " + std::to_string(pcr);
  return s + " < api-key.txt";
}

class EsysTpm : public Tpm {
 public:
  explicit EsysTpm(TpmOptions o) : o_(std::move(o)) {}
  TpmKind kind() const override { return TpmKind::kTpm2; }
  int Unseal(std::string_view blob_text, Secret* out, std::string* err) override;
  int Seal(const Secret& data, std::span<const unsigned> pcrs, std::string* blob_text,
           std::string* err) override;

 private:
  int PcrChanged(Session* s, const Tpm2Blob& blob, TSS2_RC rc, std::string* err);
  TpmOptions o_;
};

int EsysTpm::Seal(const Secret& data, std::span<const unsigned> pcr_span, std::string* blob_text,
                  std::string* err) {
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
  for (const auto& [pcr, value] : o_.seal_pcr_values) {
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
  Session s(o_);
  if (int rc = s.Open(err)) return rc;
  Tpm2Blob blob;
  blob.pcrs = pcrs;
  blob.primary_template = SrkTemplate();
  Flush primary(s.esys());
  if (int rc = s.CreatePrimary(blob.primary_template, &primary, err)) return rc;
  if (int rc = s.ReadPcrs(pcrs, &blob.pcr_values, err)) return rc;
  for (size_t i = 0; i < pcrs.size(); ++i) {
    auto it = o_.seal_pcr_values.find(pcrs[i]);
    if (it != o_.seal_pcr_values.end()) blob.pcr_values[i] = it->second;
  }
  Flush session(s.esys());
  if (int rc = s.StartSaltedSession(primary.get(), TPMA_SESSION_DECRYPT, &session, err)) return rc;

  TPM2B_SENSITIVE_CREATE sensitive{};
  sensitive.sensitive.data.size = static_cast<UINT16>(data.size());
  memcpy(sensitive.sensitive.data.buffer, data.data(), data.size());
  TPM2B_PUBLIC tmpl = SealedObjectTemplate(PcrPolicyDigest(pcrs, blob.pcr_values));
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcrs{};
  EsysOut<TPM2B_PRIVATE> priv;
  EsysOut<TPM2B_PUBLIC> pub;
  EsysOut<TPM2B_CREATION_DATA> creation;
  EsysOut<TPM2B_DIGEST> hash;
  EsysOut<TPMT_TK_CREATION> ticket;
  TSS2_RC rc = Esys_Create(s.esys().get(), primary.get(), session.get(), ESYS_TR_NONE, ESYS_TR_NONE,
                           &sensitive, &tmpl, &outside, &creation_pcrs, priv.out(), pub.out(),
                           creation.out(), hash.out(), ticket.out());
  explicit_bzero(&sensitive, sizeof sensitive);
  if (rc != TSS2_RC_SUCCESS) return CommonError(rc, "creating the sealed object", s.where(), err);
  blob.public_area = *pub;
  blob.private_area = *priv;
  *blob_text = FormatTpm2Blob(blob);
  return 0;
}

// After TPM2_RC_POLICY_FAIL: which PCRs differ from the values sealed against.
int EsysTpm::PcrChanged(Session* s, const Tpm2Blob& blob, TSS2_RC rc, std::string* err) {
  std::vector<PcrValue> now;
  if (int r = s->ReadPcrs(blob.pcrs, &now, err)) return r;
  std::vector<unsigned> changed;
  std::string detail;
  for (size_t i = 0; i < blob.pcrs.size(); ++i) {
    if (now[i] == blob.pcr_values[i]) continue;
    changed.push_back(blob.pcrs[i]);
    detail += "; PCR " + std::to_string(blob.pcrs[i]) + " was " +
              HexString(blob.pcr_values[i]).substr(0, 16) + "..., is " +
              HexString(now[i]).substr(0, 16) + "...";
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

int EsysTpm::Unseal(std::string_view blob_text, Secret* out, std::string* err) {
  Tpm2Blob blob;
  if (int rc = ParseTpm2Blob(blob_text, &blob, err)) return rc;
  Session s(o_);
  if (int rc = s.Open(err)) return rc;
  Flush primary(s.esys());
  if (int rc = s.CreatePrimary(blob.primary_template, &primary, err)) return rc;

  Flush object(s.esys());
  TSS2_RC rc = Esys_Load(s.esys().get(), primary.get(), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                         ESYS_TR_NONE, &blob.private_area, &blob.public_area, object.out());
  if (rc != TSS2_RC_SUCCESS) {
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
    return CommonError(rc, "loading the sealed object", s.where(), err);
  }

  Flush hmac(s.esys());
  if (int r = s.StartSaltedSession(primary.get(), TPMA_SESSION_ENCRYPT, &hmac, err)) return r;
  Flush policy(s.esys());
  TPMT_SYM_DEF no_sym{};
  no_sym.algorithm = TPM2_ALG_NULL;
  rc = Esys_StartAuthSession(s.esys().get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                             ESYS_TR_NONE, nullptr, TPM2_SE_POLICY, &no_sym, TPM2_ALG_SHA256,
                             policy.out());
  if (rc != TSS2_RC_SUCCESS) return CommonError(rc, "starting a policy session", s.where(), err);
  TPM2B_DIGEST any{};  // empty: the PCRs' current values
  TPML_PCR_SELECTION sel = PcrSelection(blob.pcrs);
  rc = Esys_PolicyPCR(s.esys().get(), policy.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &any,
                      &sel);
  if (rc != TSS2_RC_SUCCESS) return CommonError(rc, "applying the PCR policy", s.where(), err);

  EsysOut<TPM2B_SENSITIVE_DATA> data;
  rc =
      Esys_Unseal(s.esys().get(), object.get(), policy.get(), hmac.get(), ESYS_TR_NONE, data.out());
  if (rc != TSS2_RC_SUCCESS) {
    if (TpmCode(rc) == TPM2_RC_POLICY_FAIL) return PcrChanged(&s, blob, rc, err);
    return CommonError(rc, "unsealing", s.where(), err);
  }
  *out = Secret(data->buffer, data->size);
  return 0;
}

}  // namespace

int ParseTctiSpec(std::string_view text, TctiSpec* out, std::string* err) {
  size_t colon = text.find(':');
  std::string name(text.substr(0, colon));
  std::string conf(colon == std::string_view::npos ? "" : text.substr(colon + 1));
  for (const auto& t : kTctis) {
    if (name == t.name) {
      *out = {name, conf};
      return 0;
    }
  }
  return Fail(err, -EINVAL,
              "unknown TCTI '" + std::string(text) +
                  "' (HPCS_TPM2_TCTI or [HFL] tpm2_tcti): use device:PATH, "
                  "swtpm:host=HOST,port=PORT or mssim:host=HOST,port=PORT");
}

std::unique_ptr<Tpm> MakeTpm2(const TpmOptions& options) {
  // A shared libtss2 logs TPM errors to stderr by itself; we report them, so
  // keep it quiet unless the user asked for its log (the static build has no
  // logging at all).
  setenv("TSS2_LOG", "all+NONE", 0);
  return std::make_unique<EsysTpm>(options);
}

}  // namespace hpcs
