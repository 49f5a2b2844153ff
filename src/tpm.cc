#include "tpm.h"

#include <mbedtls/base64.h>
#include <mbedtls/cipher.h>
// clang-format off
// tss.h must come first: trousers.h uses its types.
#include <trousers/tss.h>
#include <trousers/trousers.h>
// clang-format on

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace hpcs {
namespace {

// Markers and constants of tpm-tools' tpm_seal.h.
constexpr std::string_view kHeader = "-----BEGIN TSS-----";
constexpr std::string_view kTssKeyMarker = "-----TSS KEY-----";
constexpr std::string_view kEncKeyMarker = "-----ENC KEY-----";
constexpr std::string_view kEncDatMarker = "-----ENC DAT-----";
constexpr std::string_view kFooter = "-----END TSS-----";
constexpr std::string_view kKeyTypePrefix = "Symmetric Key: ";
constexpr std::string_view kCipherName = "AES-256-CBC";
// The usage secret tpm-tools gives the storage key and the sealed data.
constexpr char kUsageSecret[] = "password";
constexpr unsigned char kIv[16] = {'I', 'B', 'M', ' ', 'S', 'E', 'A', 'L',
                                   'I', 'B', 'M', ' ', 'S', 'E', 'A', 'L'};
constexpr size_t kAesKeySize = 32;
constexpr size_t kAesBlockSize = 16;
constexpr size_t kBase64LineLength = 64;
// A TPM key blob or TPM_STORED_DATA for a 2048-bit key is well under 1 KiB.
constexpr size_t kMaxTpmBlobSize = 4096;
constexpr unsigned kMaxPcrIndex = 23;

constexpr std::string_view kResealHint =
    "reseal the API key on this machine with `hpcs-for-luks seal-api-key`";

int Fail(std::string* err, int rc, std::string msg) {
  if (err) *err = std::move(msg);
  return rc;
}

// ---- Parsing ----

class LineReader {
 public:
  explicit LineReader(std::string_view text) : rest_(text) {}
  // The next line without its "\n" (and without a "\r" before it).
  bool Next(std::string_view* line) {
    if (rest_.empty()) return false;
    size_t nl = rest_.find('\n');
    std::string_view l = rest_.substr(0, nl);
    rest_.remove_prefix(nl == std::string_view::npos ? rest_.size() : nl + 1);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    *line = l;
    return true;
  }

 private:
  std::string_view rest_;
};

bool IsBlank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

// Reads base64 lines up to the line `end` and decodes them.
int ReadSection(LineReader* r, std::string_view name, std::string_view end, size_t max_size,
                std::vector<unsigned char>* out, std::string* err) {
  std::string b64;
  std::string_view line;
  for (;;) {
    if (!r->Next(&line)) {
      return Fail(err, -EBADMSG,
                  "the " + std::string(name) +
                      " section is truncated: the file ends before its end "
                      "marker '" +
                      std::string(end) + "'");
    }
    if (line == end) break;
    if (line.starts_with("-----")) {
      return Fail(err, -EBADMSG,
                  "the " + std::string(name) +
                      " section is followed by an unexpected marker line "
                      "(expected '" +
                      std::string(end) + "')");
    }
    b64 += line;
  }
  if (b64.empty()) {
    return Fail(err, -EBADMSG, "the " + std::string(name) + " section is empty");
  }
  size_t n = 0;
  int rc = mbedtls_base64_decode(nullptr, 0, &n, reinterpret_cast<const unsigned char*>(b64.data()),
                                 b64.size());
  if (rc == MBEDTLS_ERR_BASE64_INVALID_CHARACTER) {
    return Fail(err, -EBADMSG, "the " + std::string(name) + " section is not valid base64");
  }
  if (n > max_size) {
    return Fail(
        err, -EBADMSG,
        "the " + std::string(name) + " section is too large (" + std::to_string(n) + " bytes)");
  }
  std::vector<unsigned char> bytes(n);
  rc = mbedtls_base64_decode(bytes.data(), bytes.size(), &n,
                             reinterpret_cast<const unsigned char*>(b64.data()), b64.size());
  if (rc != 0 || n == 0) {
    return Fail(err, -EBADMSG, "the " + std::string(name) + " section is not valid base64");
  }
  bytes.resize(n);
  *out = std::move(bytes);
  return 0;
}

// ---- TPM structures ----
//
// libtspi unmarshals key and sealed-data blobs without bounds checks, and
// tcsd 0.3.15 dies on a truncated key blob, so the sections are checked
// here, field by field, before anything reaches either of them.

class ByteReader {
 public:
  explicit ByteReader(std::span<const unsigned char> d) : d_(d) {}
  bool U8(unsigned* v) { return Read(1, v); }
  bool U16(unsigned* v) { return Read(2, v); }
  bool U32(unsigned* v) { return Read(4, v); }
  bool Skip(size_t n) {
    if (n > d_.size() - pos_) return false;
    pos_ += n;
    return true;
  }
  // A UINT32 size (at most max) and that many bytes.
  bool Sized(size_t max, std::span<const unsigned char>* out = nullptr, unsigned* size = nullptr) {
    unsigned n;
    if (!U32(&n) || n > max || n > d_.size() - pos_) return false;
    if (out) *out = d_.subspan(pos_, n);
    if (size) *size = n;
    pos_ += n;
    return true;
  }
  bool Done() const { return pos_ == d_.size(); }

 private:
  bool Read(size_t n, unsigned* v) {
    if (n > d_.size() - pos_) return false;
    unsigned x = 0;
    for (size_t i = 0; i < n; ++i) x = (x << 8) | d_[pos_ + i];
    pos_ += n;
    *v = x;
    return true;
  }
  std::span<const unsigned char> d_;
  size_t pos_ = 0;
};

bool PcrSelection(ByteReader* r) {
  unsigned n;
  return r->U16(&n) && n >= 1 && n <= 4 && r->Skip(n);
}

// TPM_PCR_INFO (TPM 1.1 structures) or TPM_PCR_INFO_LONG (1.2).
bool ValidPcrInfo(std::span<const unsigned char> info) {
  constexpr size_t kDigest = 20;
  {
    ByteReader r(info);
    unsigned tag, loc;
    if (r.U16(&tag) && tag == TPM_TAG_PCR_INFO_LONG && r.U8(&loc) && r.U8(&loc) &&
        PcrSelection(&r) && PcrSelection(&r) && r.Skip(2 * kDigest) && r.Done()) {
      return true;
    }
  }
  ByteReader r(info);
  return PcrSelection(&r) && r.Skip(2 * kDigest) && r.Done();
}

// TPM_STRUCT_VER 1.x, or the given TPM 1.2 tag and a 16-bit field after it.
bool VersionOrTag(ByteReader* r, unsigned tag12) {
  unsigned first, second;
  if (!r->U16(&first) || !r->U16(&second)) return false;
  return first == tag12 || (first >> 8) == 1;
}

// TPM_KEY / TPM_KEY12 of an RSA storage key, as tpm_sealdata makes.
const char* CheckKeyBlob(std::span<const unsigned char> blob) {
  ByteReader r(blob);
  unsigned usage, flags, auth, alg, enc_scheme, sig_scheme, parm_size;
  unsigned key_bits, primes, exp_size, pub_size;
  std::span<const unsigned char> pcr_info;
  if (!VersionOrTag(&r, TPM_TAG_KEY12)) return "bad version";
  if (!r.U16(&usage) || !r.U32(&flags) || !r.U8(&auth)) return "truncated";
  if (usage != TPM_KEY_STORAGE) return "not a storage key";
  if (!r.U32(&alg) || !r.U16(&enc_scheme) || !r.U16(&sig_scheme) || !r.U32(&parm_size)) {
    return "truncated";
  }
  if (alg != TPM_ALG_RSA) return "not an RSA key";
  if (!r.U32(&key_bits) || !r.U32(&primes) || !r.U32(&exp_size)) {
    return "truncated";
  }
  if (key_bits < 512 || key_bits > 4096 || key_bits % 8 != 0 || primes != 2 || exp_size > 8 ||
      parm_size != 12 + exp_size || !r.Skip(exp_size)) {
    return "bad RSA parameters";
  }
  if (!r.Sized(256, &pcr_info)) return "bad PCR info size";
  if (!pcr_info.empty() && !ValidPcrInfo(pcr_info)) return "bad PCR info";
  if (!r.Sized(512, nullptr, &pub_size) || pub_size != key_bits / 8) {
    return "bad public key";
  }
  if (!r.Sized(1024)) return "bad private part";
  if (!r.Done()) return "trailing bytes";
  return nullptr;
}

// TPM_STORED_DATA / TPM_STORED_DATA12 from TPM_Seal.
const char* CheckStoredData(std::span<const unsigned char> blob) {
  ByteReader r(blob);
  std::span<const unsigned char> seal_info;
  unsigned enc_size;
  if (!VersionOrTag(&r, TPM_TAG_STORED_DATA12)) return "bad version";
  if (!r.Sized(256, &seal_info)) return "bad PCR info size";
  if (!seal_info.empty() && !ValidPcrInfo(seal_info)) return "bad PCR info";
  if (!r.Sized(1024, nullptr, &enc_size) || enc_size == 0) {
    return "bad encrypted part";
  }
  if (!r.Done()) return "trailing bytes";
  return nullptr;
}

void AppendBase64Lines(std::string* s, const std::vector<unsigned char>& data) {
  if (data.empty()) return;
  size_t n = 0;
  mbedtls_base64_encode(nullptr, 0, &n, data.data(), data.size());
  std::string b64(n, '\0');  // n includes the terminating NUL
  mbedtls_base64_encode(reinterpret_cast<unsigned char*>(b64.data()), b64.size(), &n, data.data(),
                        data.size());
  b64.resize(n);
  for (size_t i = 0; i < b64.size(); i += kBase64LineLength) {
    s->append(b64, i, kBase64LineLength);
    s->push_back('\n');
  }
}

// ---- AES ----

class CipherContext {
 public:
  CipherContext() { mbedtls_cipher_init(&ctx_); }
  ~CipherContext() { mbedtls_cipher_free(&ctx_); }  // zeroizes the key schedule
  CipherContext(const CipherContext&) = delete;
  CipherContext& operator=(const CipherContext&) = delete;
  mbedtls_cipher_context_t* get() { return &ctx_; }

 private:
  mbedtls_cipher_context_t ctx_;
};

int SetupAes(CipherContext* c, const Secret& key, mbedtls_operation_t op, std::string* err) {
  if (key.size() != kAesKeySize) {
    return Fail(err, -EINVAL,
                "the AES key is " + std::to_string(key.size()) + " bytes, expected 32");
  }
  const mbedtls_cipher_info_t* info = mbedtls_cipher_info_from_type(MBEDTLS_CIPHER_AES_256_CBC);
  if (!info || mbedtls_cipher_setup(c->get(), info) != 0 ||
      mbedtls_cipher_setkey(c->get(), key.data(), 256, op) != 0 ||
      mbedtls_cipher_set_padding_mode(c->get(), MBEDTLS_PADDING_PKCS7) != 0) {
    return Fail(err, -EIO, "mbedTLS cannot set up AES-256-CBC");
  }
  return 0;
}

// ---- TSS ----

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

class TrousersTpm : public Tpm {
 public:
  int Unseal(std::string_view blob_text, Secret* out, std::string* err) override;
  int Seal(const Secret& data, std::span<const unsigned> pcrs, std::string* blob_text,
           std::string* err) override;
};

int TrousersTpm::Unseal(std::string_view blob_text, Secret* out, std::string* err) {
  SealedBlob blob;
  if (int rc = ParseSealedBlob(blob_text, &blob, err)) return rc;

  TssContext ctx;
  TSS_HTPM tpm;
  if (int rc = Connect(&ctx, &tpm, err)) return rc;
  TSS_HKEY srk;
  if (int rc = LoadSrk(ctx, &srk, err)) return rc;

  TSS_HKEY key;
  TSS_RESULT r = Tspi_Context_LoadKeyByBlob(
      ctx.get(), srk, static_cast<UINT32>(blob.tss_key.size()), blob.tss_key.data(), &key);
  if (r != TSS_SUCCESS) {
    if (IsTpm(r, TPM_E_AUTHFAIL)) {
      return Fail(err, -EACCES, SrkAuthMessage(r, "loading the sealing key"));
    }
    if (!IsCommFailure(r) && (Layer(r) != TSS_LAYER_TPM || Code(r) == TPM_E_DECRYPT_ERROR ||
                              Code(r) == TPM_E_BAD_PARAMETER || Code(r) == TPM_E_BAD_KEY_PROPERTY ||
                              Code(r) == TPM_E_INVALID_KEYUSAGE || Code(r) == TPM_E_BADTAG ||
                              Code(r) == TPM_E_BAD_VERSION || Code(r) == TPM_E_INVALID_STRUCTURE ||
                              Code(r) == TPM_E_BAD_DATASIZE || Code(r) == TPM_E_BAD_PARAM_SIZE ||
                              Code(r) == TPM_E_SIZE || Code(r) == TPM_E_INAPPROPRIATE_ENC ||
                              Code(r) == TPM_E_BAD_SCHEME)) {
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
  if (int rc = AssignTpmToolsSecret(ctx, key, err)) return rc;

  TSS_HENCDATA enc;
  r = Tspi_Context_CreateObject(ctx.get(), TSS_OBJECT_TYPE_ENCDATA, TSS_ENCDATA_SEAL, &enc);
  if (r != TSS_SUCCESS) return CommonError(r, "creating a data object", err);
  r = Tspi_SetAttribData(enc, TSS_TSPATTRIB_ENCDATA_BLOB, TSS_TSPATTRIB_ENCDATABLOB_BLOB,
                         static_cast<UINT32>(blob.enc_key.size()), blob.enc_key.data());
  if (r != TSS_SUCCESS) {
    return Fail(err, -EBADMSG,
                "the blob's ENC KEY section is not a sealed-data structure: " + Describe(r));
  }
  if (int rc = AssignTpmToolsSecret(ctx, enc, err)) return rc;

  TssMemory aes_raw(ctx);
  r = Tspi_Data_Unseal(enc, key, aes_raw.len(), aes_raw.out());
  if (r != TSS_SUCCESS) {
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
    if (!IsCommFailure(r) && (Layer(r) != TSS_LAYER_TPM || Code(r) == TPM_E_DECRYPT_ERROR ||
                              Code(r) == TPM_E_NOTSEALED_BLOB || Code(r) == TPM_E_BAD_PARAMETER ||
                              Code(r) == TPM_E_BADTAG || Code(r) == TPM_E_INVALID_STRUCTURE ||
                              Code(r) == TPM_E_BAD_DATASIZE || Code(r) == TPM_E_BAD_PARAM_SIZE ||
                              Code(r) == TPM_E_SIZE || Code(r) == TPM_E_INVALID_PCR_INFO ||
                              Code(r) == TPM_E_BAD_VERSION)) {
      return Fail(err, -EBADMSG,
                  "unsealing failed: " + Describe(r) +
                      ": the blob's ENC KEY section is corrupt or was not "
                      "sealed with the key of its TSS KEY section; " +
                      std::string(kResealHint));
    }
    return CommonError(r, "unsealing", err);
  }
  if (aes_raw.size() != kAesKeySize) {
    return Fail(err, -EBADMSG,
                "the blob's ENC KEY section unsealed to " + std::to_string(aes_raw.size()) +
                    " bytes instead of a 32-byte AES key; the blob is "
                    "corrupt; " +
                    std::string(kResealHint));
  }
  Secret aes_key(aes_raw.data(), aes_raw.size());
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

  // The PCR composite: the current values of the chosen PCRs, as
  // tpm_sealdata builds it (TPM_PCR_INFO, or TPM_PCR_INFO_LONG with every
  // locality when a PCR above 15 is chosen).
  TSS_HPCRS pcr_obj = 0;
  if (!pcrs.empty()) {
    TSS_RESULT r = Tspi_Context_CreateObject(ctx.get(), TSS_OBJECT_TYPE_PCRS,
                                             long_info ? TSS_PCRS_STRUCT_INFO_LONG : 0, &pcr_obj);
    if (r != TSS_SUCCESS) return CommonError(r, "creating a PCR object", err);
    for (unsigned pcr : pcrs) {
      TssMemory value(ctx);
      r = Tspi_TPM_PcrRead(tpm, pcr, value.len(), value.out());
      if (r != TSS_SUCCESS) {
        return CommonError(r, "reading PCR " + std::to_string(pcr), err);
      }
      r = Tspi_PcrComposite_SetPcrValue(pcr_obj, pcr, *value.len(), value.data());
      if (r != TSS_SUCCESS) {
        return CommonError(r, "selecting PCR " + std::to_string(pcr), err);
      }
    }
    if (long_info) {
      r = Tspi_PcrComposite_SetPcrLocality(
          pcr_obj, TPM_LOC_ZERO | TPM_LOC_ONE | TPM_LOC_TWO | TPM_LOC_THREE | TPM_LOC_FOUR);
      if (r != TSS_SUCCESS) {
        return CommonError(r, "setting the PCR locality", err);
      }
    }
  }

  Secret aes_key;
  {
    TssMemory random(ctx);
    TSS_RESULT r = Tspi_TPM_GetRandom(tpm, kAesKeySize, random.out());
    if (r != TSS_SUCCESS) {
      return CommonError(r, "getting random bytes from the TPM", err);
    }
    random.set_len(kAesKeySize);
    aes_key = Secret(random.data(), kAesKeySize);
  }

  TSS_HKEY srk;
  if (int rc = LoadSrk(ctx, &srk, err)) return rc;

  TSS_HKEY key;
  TSS_RESULT r =
      Tspi_Context_CreateObject(ctx.get(), TSS_OBJECT_TYPE_RSAKEY,
                                TSS_KEY_TYPE_STORAGE | TSS_KEY_SIZE_2048 | TSS_KEY_VOLATILE |
                                    TSS_KEY_AUTHORIZATION | TSS_KEY_NOT_MIGRATABLE,
                                &key);
  if (r != TSS_SUCCESS) return CommonError(r, "creating a key object", err);
  if (int rc = AssignTpmToolsSecret(ctx, key, err)) return rc;
  r = Tspi_Key_CreateKey(key, srk, 0);
  if (r != TSS_SUCCESS) {
    if (IsTpm(r, TPM_E_AUTHFAIL)) {
      return Fail(err, -EACCES, SrkAuthMessage(r, "creating the sealing key"));
    }
    return CommonError(r, "creating the sealing key", err);
  }
  r = Tspi_Key_LoadKey(key, srk);
  if (r != TSS_SUCCESS) {
    if (IsTpm(r, TPM_E_AUTHFAIL)) {
      return Fail(err, -EACCES, SrkAuthMessage(r, "loading the sealing key"));
    }
    return CommonError(r, "loading the sealing key", err);
  }

  TSS_HENCDATA enc;
  r = Tspi_Context_CreateObject(ctx.get(), TSS_OBJECT_TYPE_ENCDATA, TSS_ENCDATA_SEAL, &enc);
  if (r != TSS_SUCCESS) return CommonError(r, "creating a data object", err);
  if (int rc = AssignTpmToolsSecret(ctx, enc, err)) return rc;
  r = Tspi_Data_Seal(enc, key, static_cast<UINT32>(aes_key.size()), aes_key.data(), pcr_obj);
  if (r != TSS_SUCCESS) return CommonError(r, "sealing", err);

  SealedBlob blob;
  {
    TssMemory enc_blob(ctx);
    r = Tspi_GetAttribData(enc, TSS_TSPATTRIB_ENCDATA_BLOB, TSS_TSPATTRIB_ENCDATABLOB_BLOB,
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
    blob.tss_key = key_blob.ToVector();
    blob.enc_key = enc_blob.ToVector();
  }
  if (int rc = EncryptSealedData(aes_key, data, &blob.enc_data, err)) {
    return rc;
  }
  *blob_text = FormatSealedBlob(blob);
  return 0;
}

}  // namespace

int ParseSealedBlob(std::string_view text, SealedBlob* out, std::string* err) {
  if (text.size() > kMaxSealedBlobSize) {
    return Fail(err, -EFBIG,
                "the TPM blob is " + std::to_string(text.size()) + " bytes, more than the " +
                    std::to_string(kMaxSealedBlobSize) + " a sealed API key can need");
  }
  LineReader r(text);
  std::string_view line;
  if (!r.Next(&line) || line != kHeader) {
    return Fail(err, -EBADMSG,
                "the TPM blob does not start with '-----BEGIN TSS-----': not "
                "a file written by tpm_sealdata or `hpcs-for-luks "
                "seal-api-key`");
  }
  if (!r.Next(&line) || line != kTssKeyMarker) {
    return Fail(err, -EBADMSG,
                "the TPM blob lacks its TSS KEY section ('-----TSS KEY-----' "
                "after the header)");
  }
  SealedBlob blob;
  if (int rc = ReadSection(&r, "TSS KEY", kEncKeyMarker, kMaxTpmBlobSize, &blob.tss_key, err)) {
    return rc;
  }
  if (!r.Next(&line) || !line.starts_with(kKeyTypePrefix)) {
    return Fail(err, -EBADMSG,
                "the ENC KEY section lacks its 'Symmetric Key: AES-256-CBC' "
                "line");
  }
  if (line.substr(kKeyTypePrefix.size()) != kCipherName) {
    return Fail(err, -EBADMSG,
                "the ENC KEY section names a cipher other than AES-256-CBC, "
                "the only one tpm_sealdata uses");
  }
  if (int rc = ReadSection(&r, "ENC KEY", kEncDatMarker, kMaxTpmBlobSize, &blob.enc_key, err)) {
    return rc;
  }
  if (int rc = ReadSection(&r, "ENC DAT", kFooter, kMaxSealedBlobSize, &blob.enc_data, err)) {
    return rc;
  }
  if (const char* why = CheckKeyBlob(blob.tss_key)) {
    return Fail(err, -EBADMSG,
                std::string("the TSS KEY section is not a TPM storage key "
                            "blob (") +
                    why + "): the blob is corrupt");
  }
  if (const char* why = CheckStoredData(blob.enc_key)) {
    return Fail(err, -EBADMSG,
                std::string("the ENC KEY section is not TPM sealed data (") + why +
                    "): the blob is corrupt");
  }
  if (blob.enc_data.size() % kAesBlockSize != 0) {
    return Fail(err, -EBADMSG,
                "the ENC DAT section is " + std::to_string(blob.enc_data.size()) +
                    " bytes, not a whole number of AES blocks: it is "
                    "truncated or corrupt");
  }
  while (r.Next(&line)) {
    if (!IsBlank(line)) {
      return Fail(err, -EBADMSG, "the TPM blob has data after its '-----END TSS-----' line");
    }
  }
  *out = std::move(blob);
  return 0;
}

std::string FormatSealedBlob(const SealedBlob& blob) {
  std::string s;
  s.append(kHeader).push_back('\n');
  s.append(kTssKeyMarker).push_back('\n');
  AppendBase64Lines(&s, blob.tss_key);
  s.append(kEncKeyMarker).push_back('\n');
  s.append(kKeyTypePrefix).append(kCipherName).push_back('\n');
  AppendBase64Lines(&s, blob.enc_key);
  s.append(kEncDatMarker).push_back('\n');
  AppendBase64Lines(&s, blob.enc_data);
  s.append(kFooter).push_back('\n');
  return s;
}

int EncryptSealedData(const Secret& aes_key, const Secret& plain, std::vector<unsigned char>* out,
                      std::string* err) {
  CipherContext c;
  if (int rc = SetupAes(&c, aes_key, MBEDTLS_ENCRYPT, err)) return rc;
  std::vector<unsigned char> cipher(plain.size() + kAesBlockSize);
  size_t n = 0;
  if (mbedtls_cipher_crypt(c.get(), kIv, sizeof kIv, plain.data(), plain.size(), cipher.data(),
                           &n) != 0) {
    return Fail(err, -EIO, "AES-256-CBC encryption failed");
  }
  cipher.resize(n);
  *out = std::move(cipher);
  return 0;
}

int DecryptSealedData(const Secret& aes_key, std::span<const unsigned char> cipher, Secret* out,
                      std::string* err) {
  if (cipher.empty() || cipher.size() % kAesBlockSize != 0) {
    return Fail(err, -EBADMSG, "the ENC DAT section is not a whole number of AES blocks");
  }
  CipherContext c;
  if (int rc = SetupAes(&c, aes_key, MBEDTLS_DECRYPT, err)) return rc;
  Secret plain(cipher.size() + kAesBlockSize);
  size_t n = 0;
  int rc = mbedtls_cipher_crypt(c.get(), kIv, sizeof kIv, cipher.data(), cipher.size(),
                                plain.data(), &n);
  if (rc != 0) {
    return Fail(err, -EBADMSG,
                "the ENC DAT section does not decrypt with the unsealed key "
                "(bad padding): it is corrupt or belongs to another blob; " +
                    std::string(kResealHint));
  }
  plain.Truncate(n);
  *out = std::move(plain);
  return 0;
}

std::unique_ptr<Tpm> MakeTrousersTpm() { return std::make_unique<TrousersTpm>(); }

int UnsealApiKey(Tpm& tpm, std::string_view blob_text, Secret* out, std::string* err) {
  Secret key;
  if (int rc = tpm.Unseal(blob_text, &key, err)) return rc;
  if (!key.empty() && key.data()[key.size() - 1] == '\n') {
    key.Truncate(key.size() - 1);
  }
  if (key.empty()) {
    return Fail(err, -ENODATA,
                "the TPM blob unsealed to an empty API key; " + std::string(kResealHint));
  }
  *out = std::move(key);
  return 0;
}

}  // namespace hpcs
