#include "tpm/tpm1.h"

// clang-format off
// tss.h must come first: trousers.h uses its types.
#include <trousers/tss.h>
#include <trousers/trousers.h>
// clang-format on

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "tpm/tpm1_blob.h"
#include "tpm/tpm_error.h"

namespace hpcs {
namespace {

// The usage secret tpm-tools gives the storage key and the sealed data.
constexpr char kUsageSecret[] = "password";
constexpr size_t kAesKeySize = kSealedDataKeySize;
constexpr unsigned kMaxPcrIndex = 23;
constexpr size_t kSha1Size = 20;  // a TPM 1.2 PCR

// Owns a TSS context. Objects created in it (keys, policies, encrypted data,
// PCR composites) belong to it and are freed by Tspi_Context_Close.
class TssContext {
 public:
  TssContext() = default;
  ~TssContext() {
    if (h_) {
      Tspi_Context_FreeMemory(h_, nullptr);
      Tspi_Context_Close(h_);
    }
  }
  TssContext(const TssContext&) = delete;
  TssContext& operator=(const TssContext&) = delete;
  TSS_RESULT Create() { return Tspi_Context_Create(&h_); }
  TSS_HCONTEXT get() const { return h_; }

 private:
  TSS_HCONTEXT h_ = 0;
};

// Owns memory that libtspi allocated in a context; wipes it before freeing
// (it may hold key bytes). Must not outlive its TssContext.
class TssMemory {
 public:
  explicit TssMemory(const TssContext& ctx) : ctx_(ctx.get()) {}
  ~TssMemory() {
    if (p_) {
      Wipe(p_, len_);
      Tspi_Context_FreeMemory(ctx_, p_);
    }
  }
  TssMemory(const TssMemory&) = delete;
  TssMemory& operator=(const TssMemory&) = delete;
  BYTE** out() { return &p_; }
  UINT32* len() { return &len_; }
  // For calls that return no length (Tspi_TPM_GetRandom).
  void set_len(UINT32 n) { len_ = n; }
  const BYTE* data() const { return p_; }
  BYTE* data() { return p_; }
  size_t size() const { return len_; }
  std::vector<unsigned char> ToVector() const {
    return p_ ? std::vector<unsigned char>(p_, p_ + len_) : std::vector<unsigned char>();
  }

 private:
  TSS_HCONTEXT ctx_;
  BYTE* p_ = nullptr;
  UINT32 len_ = 0;
};

UINT32 Code(TSS_RESULT r) { return ERROR_CODE(r); }
UINT32 Layer(TSS_RESULT r) { return ERROR_LAYER(r); }
bool IsTpm(TSS_RESULT r, UINT32 code) { return Layer(r) == TSS_LAYER_TPM && Code(r) == code; }

std::string Describe(TSS_RESULT r) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%x", r);
  std::string s = "TSS error ";
  s += buf;
  const char* layer = Trspi_Error_Layer(r);
  const char* text = Trspi_Error_String(r);
  s += " (";
  s += layer ? layer : "?";
  s += ": ";
  s += text ? text : "unknown";
  s += ")";
  return s;
}

std::string TcsdEndpoint() {
  const char* host = getenv("TSS_TCSD_HOSTNAME");
  const char* port = getenv("TSS_TCSD_PORT");
  std::string h = host && *host ? std::string(host).substr(0, 255) : "localhost";
  std::string p = port && *port ? std::string(port).substr(0, 16) : "30003";
  return h + ":" + p;
}

bool IsCommFailure(TSS_RESULT r) {
  if (Layer(r) == TSS_LAYER_TPM) return false;
  UINT32 c = Code(r);
  return c == Code(TSS_E_COMM_FAILURE) || c == Code(TSS_E_NO_CONNECTION) ||
         c == Code(TSS_E_CONNECTION_FAILED) || c == Code(TSS_E_CONNECTION_BROKEN);
}

// Errors that mean the same whatever the step: the TPM's state, tcsd gone.
int CommonError(TSS_RESULT r, std::string_view step, std::string* err) {
  std::string what = std::string(step) + " failed: " + Describe(r) + ": ";
  if (IsCommFailure(r)) {
    return Fail(err, -ECONNREFUSED,
                what + "lost the connection to tcsd at " + TcsdEndpoint() +
                    "; check that tcsd (trousers) is running and can reach "
                    "the TPM");
  }
  if (Layer(r) == TSS_LAYER_TPM) {
    switch (Code(r)) {
      case TPM_E_DISABLED:
      case TPM_E_DEACTIVATED:
        return Fail(err, -ENODEV,
                    what +
                        "the TPM is disabled or deactivated; enable and "
                        "activate it in the firmware setup");
      case TPM_E_FAILEDSELFTEST:
      case TPM_E_FAIL:
        return Fail(err, -ENODEV,
                    what +
                        "the TPM reports a failure; check it in the "
                        "firmware setup");
      case TPM_E_DEFEND_LOCK_RUNNING:
        return Fail(err, -EBUSY,
                    what +
                        "the TPM's dictionary-attack lockout is active; "
                        "wait for it to expire or reset it with "
                        "`tpm_resetdalock`");
      case TPM_E_NOSRK:
        return Fail(err, -ENOKEY,
                    what +
                        "the TPM is not owned; take ownership with "
                        "`tpm_takeownership -y -z`, then seal the API key "
                        "with `hpcs-for-luks seal-api-key`");
      default:
        break;
    }
  }
  return Fail(err, -EIO, what.substr(0, what.size() - 2));
}

int Connect(TssContext* ctx, TSS_HTPM* tpm, std::string* err) {
  TSS_RESULT r = ctx->Create();
  if (r != TSS_SUCCESS) {
    return Fail(err, -EIO, "cannot create a TSS context: " + Describe(r));
  }
  r = Tspi_Context_Connect(ctx->get(), nullptr);
  if (r != TSS_SUCCESS) {
    return Fail(err, -ECONNREFUSED,
                "cannot reach tcsd at " + TcsdEndpoint() +
                    " (set by TSS_TCSD_HOSTNAME/TSS_TCSD_PORT, default "
                    "localhost:30003): " +
                    Describe(r) +
                    "; tcsd (trousers) must be running: start it (e.g. "
                    "`systemctl start tcsd`) before using the TPM");
  }
  r = Tspi_Context_GetTpmObject(ctx->get(), tpm);
  if (r != TSS_SUCCESS) return CommonError(r, "getting the TPM object", err);
  return 0;
}

// Creates a usage policy holding `secret` and assigns it to `obj`.
int AssignUsagePolicy(const TssContext& ctx, TSS_HOBJECT obj, UINT32 mode, const void* secret,
                      size_t len, std::string* err) {
  TSS_HPOLICY policy;
  TSS_RESULT r =
      Tspi_Context_CreateObject(ctx.get(), TSS_OBJECT_TYPE_POLICY, TSS_POLICY_USAGE, &policy);
  if (r == TSS_SUCCESS) {
    r = Tspi_Policy_SetSecret(policy, mode, static_cast<UINT32>(len),
                              static_cast<BYTE*>(const_cast<void*>(secret)));
  }
  if (r == TSS_SUCCESS) r = Tspi_Policy_AssignToObject(policy, obj);
  if (r != TSS_SUCCESS) return CommonError(r, "setting a usage policy", err);
  return 0;
}

int AssignTpmToolsSecret(const TssContext& ctx, TSS_HOBJECT obj, std::string* err) {
  return AssignUsagePolicy(ctx, obj, TSS_SECRET_MODE_PLAIN, kUsageSecret, strlen(kUsageSecret),
                           err);
}

// Loads the SRK and gives it the well-known secret (tpm_takeownership -z).
int LoadSrk(const TssContext& ctx, TSS_HKEY* srk, std::string* err) {
  const TSS_UUID srk_uuid = TSS_UUID_SRK;
  TSS_RESULT r = Tspi_Context_LoadKeyByUUID(ctx.get(), TSS_PS_TYPE_SYSTEM, srk_uuid, srk);
  if (r != TSS_SUCCESS) {
    if (Layer(r) != TSS_LAYER_TPM && Code(r) == Code(TSS_E_PS_KEY_NOTFOUND)) {
      return Fail(err, -ENOKEY,
                  "loading the SRK failed: " + Describe(r) +
                      ": the TPM is not owned (or tcsd's system.data lost its "
                      "SRK); take ownership with `tpm_takeownership -y -z`, "
                      "then seal the API key with `hpcs-for-luks "
                      "seal-api-key`");
    }
    return CommonError(r, "loading the SRK", err);
  }
  static const BYTE kWellKnown[] = TSS_WELL_KNOWN_SECRET;
  return AssignUsagePolicy(ctx, *srk, TSS_SECRET_MODE_SHA1, kWellKnown, sizeof kWellKnown, err);
}

std::string SrkAuthMessage(TSS_RESULT r, std::string_view step) {
  return std::string(step) + " failed: " + Describe(r) +
         ": the TPM refused the SRK's well-known secret; this tool needs an "
         "SRK taken with the well-known secret (`tpm_takeownership -y -z`)";
}

// Not a lost connection, and either not the TPM's code or one of `codes`:
// the TPM (or the TSS) found a section of the blob wrong.
bool BlobRejected(TSS_RESULT r, std::initializer_list<UINT32> codes) {
  if (IsCommFailure(r)) return false;
  return Layer(r) != TSS_LAYER_TPM || std::find(codes.begin(), codes.end(), Code(r)) != codes.end();
}

// libtspi takes input buffers as non-const; it only reads them.
BYTE* TspiInput(const unsigned char* p) { return const_cast<BYTE*>(p); }

// Loads the blob's sealing key (its TSS KEY section) under the SRK, with
// tpm-tools' usage secret.
int LoadSealingKey(const TssContext& ctx, TSS_HKEY srk, const SealedBlob& blob, TSS_HKEY* key,
                   std::string* err) {
  TSS_RESULT r =
      Tspi_Context_LoadKeyByBlob(ctx.get(), srk, static_cast<UINT32>(blob.tss_key.size()),
                                 TspiInput(blob.tss_key.data()), key);
  if (r != TSS_SUCCESS) {
    if (IsTpm(r, TPM_E_AUTHFAIL)) {
      return Fail(err, -EACCES, SrkAuthMessage(r, "loading the sealing key"));
    }
    // Sealed by another TPM, or corrupt.
    if (BlobRejected(r, {TPM_E_DECRYPT_ERROR, TPM_E_BAD_PARAMETER, TPM_E_BAD_KEY_PROPERTY,
                         TPM_E_INVALID_KEYUSAGE, TPM_E_BADTAG, TPM_E_BAD_VERSION,
                         TPM_E_INVALID_STRUCTURE, TPM_E_BAD_DATASIZE, TPM_E_BAD_PARAM_SIZE,
                         TPM_E_SIZE, TPM_E_INAPPROPRIATE_ENC, TPM_E_BAD_SCHEME})) {
      return Fail(err, -EBADMSG,
                  "the TPM cannot load the sealing key of the blob's TSS KEY "
                  "section: " +
                      Describe(r) +
                      "; the blob was sealed by another TPM or before this "
                      "TPM was cleared and re-owned, or the section is "
                      "corrupt; " +
                      std::string(kResealHint));
    }
    return CommonError(r, "loading the sealing key", err);
  }
  return AssignTpmToolsSecret(ctx, *key, err);
}

// The sealed data of the blob's ENC KEY section, with tpm-tools' usage
// secret.
int LoadSealedData(const TssContext& ctx, const SealedBlob& blob, TSS_HENCDATA* enc,
                   std::string* err) {
  TSS_RESULT r =
      Tspi_Context_CreateObject(ctx.get(), TSS_OBJECT_TYPE_ENCDATA, TSS_ENCDATA_SEAL, enc);
  if (r != TSS_SUCCESS) return CommonError(r, "creating a data object", err);
  r = Tspi_SetAttribData(*enc, TSS_TSPATTRIB_ENCDATA_BLOB, TSS_TSPATTRIB_ENCDATABLOB_BLOB,
                         static_cast<UINT32>(blob.enc_key.size()), TspiInput(blob.enc_key.data()));
  if (r != TSS_SUCCESS) {
    return Fail(err, -EBADMSG,
                "the blob's ENC KEY section is not a sealed-data structure: " + Describe(r));
  }
  return AssignTpmToolsSecret(ctx, *enc, err);
}

// Why Tspi_Data_Unseal failed, for the user.
int UnsealError(TSS_RESULT r, std::string* err) {
  if (IsTpm(r, TPM_E_WRONGPCRVAL)) {
    return Fail(err, -EKEYREJECTED,
                "the TPM refused to unseal the API key: TPM_E_WRONGPCRVAL "
                "(0x18): the PCRs it was sealed to changed since sealing "
                "(e.g. after a firmware, boot-loader or kernel update); if "
                "that change was intended, reseal the API key with "
                "`hpcs-for-luks seal-api-key`, otherwise find out what "
                "changed the boot chain");
  }
  if (IsTpm(r, TPM_E_AUTHFAIL) || IsTpm(r, TPM_E_AUTH2FAIL)) {
    return Fail(err, -EACCES,
                "unsealing failed: " + Describe(r) +
                    ": the TPM refused the usage secret of the sealed key; "
                    "the blob was not made by tpm_sealdata or "
                    "`hpcs-for-luks seal-api-key`; " +
                    std::string(kResealHint));
  }
  // Corrupt, or sealed with another key.
  if (BlobRejected(r, {TPM_E_DECRYPT_ERROR, TPM_E_NOTSEALED_BLOB, TPM_E_BAD_PARAMETER, TPM_E_BADTAG,
                       TPM_E_INVALID_STRUCTURE, TPM_E_BAD_DATASIZE, TPM_E_BAD_PARAM_SIZE,
                       TPM_E_SIZE, TPM_E_INVALID_PCR_INFO, TPM_E_BAD_VERSION})) {
    return Fail(err, -EBADMSG,
                "unsealing failed: " + Describe(r) +
                    ": the blob's ENC KEY section is corrupt or was not "
                    "sealed with the key of its TSS KEY section; " +
                    std::string(kResealHint));
  }
  return CommonError(r, "unsealing", err);
}

// Unseals the AES key that encrypts the blob's data.
int UnsealAesKey(const TssContext& ctx, TSS_HENCDATA enc, TSS_HKEY key, Secret* aes_key,
                 std::string* err) {
  TssMemory aes_raw(ctx);
  TSS_RESULT r = Tspi_Data_Unseal(enc, key, aes_raw.len(), aes_raw.out());
  if (r != TSS_SUCCESS) return UnsealError(r, err);
  if (aes_raw.size() != kAesKeySize) {
    return Fail(err, -EBADMSG,
                "the blob's ENC KEY section unsealed to " + std::to_string(aes_raw.size()) +
                    " bytes instead of a 32-byte AES key; the blob is "
                    "corrupt; " +
                    std::string(kResealHint));
  }
  *aes_key = Secret(aes_raw.data(), aes_raw.size());
  return 0;
}

// The PCR composite to seal to: the current values of the chosen PCRs (or
// the ones `given` names), as tpm_sealdata builds it (TPM_PCR_INFO, or
// TPM_PCR_INFO_LONG with every locality when a PCR above 15 is chosen). No
// PCRs: *pcr_obj stays 0.
int MakePcrComposite(const TssContext& ctx, TSS_HTPM tpm, std::span<const unsigned> pcrs,
                     const std::map<unsigned, std::vector<uint8_t>>& given, bool long_info,
                     TSS_HPCRS* pcr_obj, std::string* err) {
  if (pcrs.empty()) return 0;
  TSS_RESULT r = Tspi_Context_CreateObject(ctx.get(), TSS_OBJECT_TYPE_PCRS,
                                           long_info ? TSS_PCRS_STRUCT_INFO_LONG : 0, pcr_obj);
  if (r != TSS_SUCCESS) return CommonError(r, "creating a PCR object", err);
  for (unsigned pcr : pcrs) {
    TssMemory read(ctx);
    std::vector<uint8_t> value;
    if (auto it = given.find(pcr); it != given.end()) {
      value = it->second;
    } else {
      r = Tspi_TPM_PcrRead(tpm, pcr, read.len(), read.out());
      if (r != TSS_SUCCESS) {
        return CommonError(r, "reading PCR " + std::to_string(pcr), err);
      }
      value = read.ToVector();
    }
    if (value.size() != kSha1Size) {
      return Fail(err, -EINVAL, "PCR " + std::to_string(pcr) + ": a TPM 1.2 value is 20 bytes");
    }
    r = Tspi_PcrComposite_SetPcrValue(*pcr_obj, pcr, value.size(), value.data());
    if (r != TSS_SUCCESS) {
      return CommonError(r, "selecting PCR " + std::to_string(pcr), err);
    }
  }
  if (long_info) {
    r = Tspi_PcrComposite_SetPcrLocality(
        *pcr_obj, TPM_LOC_ZERO | TPM_LOC_ONE | TPM_LOC_TWO | TPM_LOC_THREE | TPM_LOC_FOUR);
    if (r != TSS_SUCCESS) {
      return CommonError(r, "setting the PCR locality", err);
    }
  }
  return 0;
}

// A fresh AES key from the TPM's random number generator.
int RandomAesKey(const TssContext& ctx, TSS_HTPM tpm, Secret* aes_key, std::string* err) {
  TssMemory random(ctx);
  TSS_RESULT r = Tspi_TPM_GetRandom(tpm, kAesKeySize, random.out());
  if (r != TSS_SUCCESS) {
    return CommonError(r, "getting random bytes from the TPM", err);
  }
  random.set_len(kAesKeySize);
  *aes_key = Secret(random.data(), kAesKeySize);
  return 0;
}

// A new sealing key under the SRK (a non-migratable 2048-bit storage key
// with tpm-tools' usage secret, as tpm_sealdata makes it), loaded.
int CreateSealingKey(const TssContext& ctx, TSS_HKEY srk, TSS_HKEY* key, std::string* err) {
  TSS_RESULT r =
      Tspi_Context_CreateObject(ctx.get(), TSS_OBJECT_TYPE_RSAKEY,
                                TSS_KEY_TYPE_STORAGE | TSS_KEY_SIZE_2048 | TSS_KEY_VOLATILE |
                                    TSS_KEY_AUTHORIZATION | TSS_KEY_NOT_MIGRATABLE,
                                key);
  if (r != TSS_SUCCESS) return CommonError(r, "creating a key object", err);
  if (int rc = AssignTpmToolsSecret(ctx, *key, err)) return rc;
  r = Tspi_Key_CreateKey(*key, srk, 0);
  if (r != TSS_SUCCESS) {
    if (IsTpm(r, TPM_E_AUTHFAIL)) {
      return Fail(err, -EACCES, SrkAuthMessage(r, "creating the sealing key"));
    }
    return CommonError(r, "creating the sealing key", err);
  }
  r = Tspi_Key_LoadKey(*key, srk);
  if (r != TSS_SUCCESS) {
    if (IsTpm(r, TPM_E_AUTHFAIL)) {
      return Fail(err, -EACCES, SrkAuthMessage(r, "loading the sealing key"));
    }
    return CommonError(r, "loading the sealing key", err);
  }
  return 0;
}

// Seals the AES key with the sealing key to the PCR composite (0: none).
int SealAesKey(const TssContext& ctx, TSS_HKEY key, const Secret& aes_key, TSS_HPCRS pcr_obj,
               TSS_HENCDATA* enc, std::string* err) {
  TSS_RESULT r =
      Tspi_Context_CreateObject(ctx.get(), TSS_OBJECT_TYPE_ENCDATA, TSS_ENCDATA_SEAL, enc);
  if (r != TSS_SUCCESS) return CommonError(r, "creating a data object", err);
  if (int rc = AssignTpmToolsSecret(ctx, *enc, err)) return rc;
  r = Tspi_Data_Seal(*enc, key, static_cast<UINT32>(aes_key.size()), TspiInput(aes_key.data()),
                     pcr_obj);
  if (r != TSS_SUCCESS) return CommonError(r, "sealing", err);
  return 0;
}

// The blob's TSS KEY and ENC KEY sections: the sealing key and the sealed
// AES key as the TPM gave them.
int ReadKeySections(const TssContext& ctx, TSS_HKEY key, TSS_HENCDATA enc, SealedBlob* blob,
                    std::string* err) {
  TssMemory enc_blob(ctx);
  TSS_RESULT r = Tspi_GetAttribData(enc, TSS_TSPATTRIB_ENCDATA_BLOB, TSS_TSPATTRIB_ENCDATABLOB_BLOB,
                                    enc_blob.len(), enc_blob.out());
  if (r != TSS_SUCCESS) {
    return CommonError(r, "reading the sealed key blob", err);
  }
  TssMemory key_blob(ctx);
  r = Tspi_GetAttribData(key, TSS_TSPATTRIB_KEY_BLOB, TSS_TSPATTRIB_KEYBLOB_BLOB, key_blob.len(),
                         key_blob.out());
  if (r != TSS_SUCCESS) {
    return CommonError(r, "reading the sealing key blob", err);
  }
  blob->tss_key = key_blob.ToVector();
  blob->enc_key = enc_blob.ToVector();
  return 0;
}

class TrousersTpm : public Tpm {
 public:
  explicit TrousersTpm(TpmOptions o) : o_(std::move(o)) {}
  TpmKind kind() const override { return TpmKind::kTpm1; }
  int Unseal(std::string_view blob_text, Secret* out, std::string* err) override;
  int Seal(const Secret& data, std::span<const unsigned> pcrs, std::string* blob_text,
           std::string* err) override;
  int ReadPcr(unsigned pcr, std::vector<uint8_t>* value, std::string* err) override;
  int ExtendPcr(unsigned pcr, std::span<const uint8_t> digest, std::string* err) override;

 private:
  TpmOptions o_;
};

int TrousersTpm::ReadPcr(unsigned pcr, std::vector<uint8_t>* value, std::string* err) {
  if (pcr > kMaxPcrIndex)
    return Fail(err, -EINVAL, "PCR " + std::to_string(pcr) + " is out of range");
  TssContext ctx;
  TSS_HTPM tpm;
  if (int rc = Connect(&ctx, &tpm, err)) return rc;
  TssMemory read(ctx);
  TSS_RESULT r = Tspi_TPM_PcrRead(tpm, pcr, read.len(), read.out());
  if (r != TSS_SUCCESS) return CommonError(r, "reading PCR " + std::to_string(pcr), err);
  *value = read.ToVector();
  return 0;
}

int TrousersTpm::ExtendPcr(unsigned pcr, std::span<const uint8_t> digest, std::string* err) {
  if (pcr > kMaxPcrIndex || digest.size() != kSha1Size) {
    return Fail(err, -EINVAL,
                "extending PCR " + std::to_string(pcr) + ": a 20-byte digest is needed");
  }
  TssContext ctx;
  TSS_HTPM tpm;
  if (int rc = Connect(&ctx, &tpm, err)) return rc;
  std::vector<BYTE> data(digest.begin(), digest.end());
  TssMemory now(ctx);
  TSS_RESULT r =
      Tspi_TPM_PcrExtend(tpm, pcr, data.size(), data.data(), nullptr, now.len(), now.out());
  if (r != TSS_SUCCESS) return CommonError(r, "extending PCR " + std::to_string(pcr), err);
  return 0;
}

int TrousersTpm::Unseal(std::string_view blob_text, Secret* out, std::string* err) {
  SealedBlob blob;
  if (int rc = ParseSealedBlob(blob_text, &blob, err)) return rc;
  TssContext ctx;
  TSS_HTPM tpm;
  if (int rc = Connect(&ctx, &tpm, err)) return rc;
  TSS_HKEY srk;
  if (int rc = LoadSrk(ctx, &srk, err)) return rc;
  TSS_HKEY key;
  if (int rc = LoadSealingKey(ctx, srk, blob, &key, err)) return rc;
  TSS_HENCDATA enc;
  if (int rc = LoadSealedData(ctx, blob, &enc, err)) return rc;
  Secret aes_key;
  if (int rc = UnsealAesKey(ctx, enc, key, &aes_key, err)) return rc;
  return DecryptSealedData(aes_key, blob.enc_data, out, err);
}

int TrousersTpm::Seal(const Secret& data, std::span<const unsigned> pcrs, std::string* blob_text,
                      std::string* err) {
  bool long_info = false;
  for (unsigned pcr : pcrs) {
    if (pcr > kMaxPcrIndex) {
      return Fail(
          err, -EINVAL,
          "PCR index " + std::to_string(pcr) + " is out of range (a TPM 1.2 has PCRs 0 to 23)");
    }
    if (pcr > 15) long_info = true;
  }
  TssContext ctx;
  TSS_HTPM tpm;
  if (int rc = Connect(&ctx, &tpm, err)) return rc;
  TSS_HPCRS pcr_obj = 0;
  if (int rc =
          MakePcrComposite(ctx, tpm, pcrs, o_.seal_pcr_values_tpm1, long_info, &pcr_obj, err)) {
    return rc;
  }
  Secret aes_key;
  if (int rc = RandomAesKey(ctx, tpm, &aes_key, err)) return rc;
  TSS_HKEY srk;
  if (int rc = LoadSrk(ctx, &srk, err)) return rc;
  TSS_HKEY key;
  if (int rc = CreateSealingKey(ctx, srk, &key, err)) return rc;
  TSS_HENCDATA enc;
  if (int rc = SealAesKey(ctx, key, aes_key, pcr_obj, &enc, err)) return rc;
  SealedBlob blob;
  if (int rc = ReadKeySections(ctx, key, enc, &blob, err)) return rc;
  if (int rc = EncryptSealedData(aes_key, data, &blob.enc_data, err)) return rc;
  *blob_text = FormatSealedBlob(blob);
  return 0;
}

}  // namespace

std::unique_ptr<Tpm> MakeTpm1(const TpmOptions& options) {
  return std::make_unique<TrousersTpm>(options);
}

}  // namespace hpcs
