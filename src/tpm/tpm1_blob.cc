#include "tpm/tpm1_blob.h"

#include <mbedtls/cipher.h>

#include <cerrno>
#include <string>
#include <utility>

#include "base/encoding.h"
#include "base/error.h"
#include "tpm/tpm_error.h"

namespace hpcs {
namespace {

// Markers and constants of tpm-tools' tpm_seal.h.
constexpr std::string_view kHeader = kTpm1BlobHeader;
constexpr std::string_view kTssKeyMarker = "-----TSS KEY-----";
constexpr std::string_view kEncKeyMarker = "-----ENC KEY-----";
constexpr std::string_view kEncDatMarker = "-----ENC DAT-----";
constexpr std::string_view kFooter = "-----END TSS-----";
constexpr std::string_view kKeyTypePrefix = "Symmetric Key: ";
constexpr std::string_view kCipherName = "AES-256-CBC";
constexpr unsigned char kIv[16] = {'I', 'B', 'M', ' ', 'S', 'E', 'A', 'L',
                                   'I', 'B', 'M', ' ', 'S', 'E', 'A', 'L'};
constexpr size_t kAesKeySize = kSealedDataKeySize;
constexpr size_t kAesBlockSize = 16;
constexpr size_t kBase64LineLength = 64;
// A TPM key blob or TPM_STORED_DATA for a 2048-bit key is well under 1 KiB.
constexpr size_t kMaxTpmBlobSize = 4096;
// TPM 1.2 constants (TPM Main Part 2, Structures) used by the checks below.
constexpr unsigned kTagPcrInfoLong = 0x0006;   // kTagPcrInfoLong
constexpr unsigned kTagStoredData12 = 0x0016;  // kTagStoredData12
constexpr unsigned kTagKey12 = 0x0028;         // kTagKey12
constexpr unsigned kKeyUsageStorage = 0x0011;  // kKeyUsageStorage
constexpr unsigned kAlgRsa = 0x00000001;       // kAlgRsa

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
  Secret bytes;
  if (Base64Decode(b64, &bytes) < 0 || bytes.empty()) {
    return Fail(err, -EBADMSG, "the " + std::string(name) + " section is not valid base64");
  }
  if (bytes.size() > max_size) {
    return Fail(err, -EBADMSG,
                "the " + std::string(name) + " section is too large (" +
                    std::to_string(bytes.size()) + " bytes)");
  }
  out->assign(bytes.data(), bytes.data() + bytes.size());
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
    if (r.U16(&tag) && tag == kTagPcrInfoLong && r.U8(&loc) && r.U8(&loc) && PcrSelection(&r) &&
        PcrSelection(&r) && r.Skip(2 * kDigest) && r.Done()) {
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
  if (!VersionOrTag(&r, kTagKey12)) return "bad version";
  if (!r.U16(&usage) || !r.U32(&flags) || !r.U8(&auth)) return "truncated";
  if (usage != kKeyUsageStorage) return "not a storage key";
  if (!r.U32(&alg) || !r.U16(&enc_scheme) || !r.U16(&sig_scheme) || !r.U32(&parm_size)) {
    return "truncated";
  }
  if (alg != kAlgRsa) return "not an RSA key";
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
  if (!VersionOrTag(&r, kTagStoredData12)) return "bad version";
  if (!r.Sized(256, &seal_info)) return "bad PCR info size";
  if (!seal_info.empty() && !ValidPcrInfo(seal_info)) return "bad PCR info";
  if (!r.Sized(1024, nullptr, &enc_size) || enc_size == 0) {
    return "bad encrypted part";
  }
  if (!r.Done()) return "trailing bytes";
  return nullptr;
}

void AppendBase64Lines(std::string* s, const std::vector<unsigned char>& data) {
  std::string b64 = Base64Encode(std::as_bytes(std::span(data)));
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

}  // namespace hpcs
