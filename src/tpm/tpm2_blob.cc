#include "tpm/tpm2_blob.h"

#include <mbedtls/md.h>
#include <tss2/tss2_mu.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <string>
#include <utility>

#include "base/encoding.h"
#include "base/error.h"
#include "base/strutil.h"
#include "tpm/tpm_error.h"

namespace hpcs {
namespace {

constexpr std::string_view kVersion = "1";
constexpr std::string_view kHierarchy = "owner";
constexpr std::string_view kBank = "sha256";

int Corrupt(std::string* err, const std::string& what) {
  return Fail(err, -EBADMSG,
              "the TPM 2.0 blob is corrupt: " + what + "; " + std::string(kResealHint));
}

// Decodes a base64 part and unmarshals one structure from it, which must use
// every byte.
template <typename T, typename F>
bool Unmarshal(std::string_view b64, F unmarshal, T* out) {
  Secret bytes;
  if (Base64Decode(b64, &bytes) < 0 || bytes.empty()) return false;
  size_t offset = 0;
  T t{};
  if (unmarshal(bytes.data(), bytes.size(), &offset, &t) != TSS2_RC_SUCCESS ||
      offset != bytes.size()) {
    return false;
  }
  *out = t;
  return true;
}

template <typename T, typename F>
std::string Marshal(const T& t, F marshal) {
  std::vector<uint8_t> buf(sizeof(T) + 16);
  size_t offset = 0;
  if (marshal(&t, buf.data(), buf.size(), &offset) != TSS2_RC_SUCCESS) return "";
  buf.resize(offset);
  return Base64Encode(std::as_bytes(std::span(buf)));
}

}  // namespace

bool ParsePcrValue(std::string_view s, PcrValue* out) {
  std::vector<unsigned char> bytes;
  if (s.size() != 2 * out->size() || HexDecode(s, &bytes) < 0) return false;
  std::copy(bytes.begin(), bytes.end(), out->begin());
  return true;
}

namespace {

int ParsePcrList(std::string_view s, std::vector<unsigned>* out) {
  std::vector<unsigned> pcrs;
  for (const auto& part : Split(s, ' ')) {
    unsigned long long n = 0;
    if (!ParseUint(part, &n) || n > kMaxTpm2Pcr) return -1;
    if (!pcrs.empty() && n <= pcrs.back()) return -1;
    pcrs.push_back(static_cast<unsigned>(n));
  }
  if (pcrs.empty()) return -1;
  *out = std::move(pcrs);
  return 0;
}

// The object must open only through its policy: a sealed data object
// (KEYEDHASH, no signing or decryption scheme) without userWithAuth.
const char* CheckSealedObject(const TPMT_PUBLIC& p) {
  if (p.type != TPM2_ALG_KEYEDHASH) return "not a sealed data object";
  if (p.nameAlg != TPM2_ALG_SHA256) return "its name algorithm is not SHA-256";
  if (p.parameters.keyedHashDetail.scheme.scheme != TPM2_ALG_NULL) return "it is a key, not data";
  if (p.objectAttributes & TPMA_OBJECT_USERWITHAUTH) return "it opens without its PCR policy";
  if (p.objectAttributes & (TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_DECRYPT)) {
    return "it is a key, not data";
  }
  if (p.authPolicy.size != sizeof(PcrValue)) return "its policy is not a SHA-256 digest";
  return nullptr;
}

// A key's name: its name algorithm (2 bytes) and that hash of its public
// area, here the primary template's algorithm.
bool ParsePrimaryName(std::string_view hex, TPMI_ALG_HASH name_alg, TPM2B_NAME* out) {
  size_t digest = 0;
  switch (name_alg) {
    case TPM2_ALG_SHA1:
      digest = 20;
      break;
    case TPM2_ALG_SHA256:
      digest = 32;
      break;
    case TPM2_ALG_SHA384:
      digest = 48;
      break;
    case TPM2_ALG_SHA512:
      digest = 64;
      break;
    default:
      return false;
  }
  std::vector<unsigned char> bytes;
  if (HexDecode(hex, &bytes) < 0 || bytes.size() != 2 + digest ||
      ((bytes[0] << 8) | bytes[1]) != name_alg) {
    return false;
  }
  out->size = static_cast<UINT16>(bytes.size());
  std::copy(bytes.begin(), bytes.end(), out->name);
  return true;
}

const char* CheckPrimaryTemplate(const TPMT_PUBLIC& p) {
  if (p.type != TPM2_ALG_ECC && p.type != TPM2_ALG_RSA) return "not an ECC or RSA key";
  const TPMA_OBJECT need = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
                           TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_USERWITHAUTH;
  if ((p.objectAttributes & need) != need) return "not a storage key";
  return nullptr;
}

}  // namespace

TPML_PCR_SELECTION PcrSelection(std::span<const unsigned> pcrs) {
  TPML_PCR_SELECTION sel{};
  sel.count = 1;
  sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
  sel.pcrSelections[0].sizeofSelect = 3;
  for (unsigned pcr : pcrs) {
    if (pcr <= kMaxTpm2Pcr) sel.pcrSelections[0].pcrSelect[pcr / 8] |= 1u << (pcr % 8);
  }
  return sel;
}

PcrValue PcrPolicyDigest(std::span<const unsigned> pcrs, std::span<const PcrValue> values) {
  // The PCR digest: the values in the order of the selection (ascending).
  std::vector<std::pair<unsigned, PcrValue>> sorted;
  for (size_t i = 0; i < pcrs.size() && i < values.size(); ++i) {
    sorted.emplace_back(pcrs[i], values[i]);
  }
  std::sort(sorted.begin(), sorted.end());
  const mbedtls_md_info_t* sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  mbedtls_md_context_t h;
  mbedtls_md_init(&h);
  mbedtls_md_setup(&h, sha256, 0);
  PcrValue pcr_digest{};
  mbedtls_md_starts(&h);
  for (const auto& [pcr, value] : sorted) mbedtls_md_update(&h, value.data(), value.size());
  mbedtls_md_finish(&h, pcr_digest.data());

  uint8_t sel[sizeof(TPML_PCR_SELECTION)];
  size_t sel_len = 0;
  TPML_PCR_SELECTION selection = PcrSelection(pcrs);
  Tss2_MU_TPML_PCR_SELECTION_Marshal(&selection, sel, sizeof sel, &sel_len);
  const uint8_t cc[4] = {0, 0, (TPM2_CC_PolicyPCR >> 8) & 0xff, TPM2_CC_PolicyPCR & 0xff};
  const PcrValue zero{};
  PcrValue policy{};
  mbedtls_md_starts(&h);
  mbedtls_md_update(&h, zero.data(), zero.size());
  mbedtls_md_update(&h, cc, sizeof cc);
  mbedtls_md_update(&h, sel, sel_len);
  mbedtls_md_update(&h, pcr_digest.data(), pcr_digest.size());
  mbedtls_md_finish(&h, policy.data());
  mbedtls_md_free(&h);
  return policy;
}

namespace {

// The "name: value" lines between the header and the footer, by name.
using Parts = std::map<std::string, std::string_view, std::less<>>;

// Takes a part out of `parts` (what is left at the end is unknown).
bool Take(Parts* parts, std::string_view name, std::string_view* value) {
  auto it = parts->find(name);
  if (it == parts->end()) return false;
  *value = it->second;
  parts->erase(it);
  return true;
}

// The blob's lines: CR before LF dropped, and trailing blank lines.
std::vector<std::string_view> BlobLines(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string_view l = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.push_back(l);
  }
  while (!lines.empty() && Trim(lines.back()).empty()) lines.pop_back();
  return lines;
}

// The parts between the header and the footer, each name once.
int SplitParts(std::string_view text, Parts* out, std::string* err) {
  std::vector<std::string_view> lines = BlobLines(text);
  if (lines.empty() || lines.front() != kTpm2BlobHeader) {
    return Corrupt(err, "it does not start with '" + std::string(kTpm2BlobHeader) + "'");
  }
  if (lines.size() < 2 || lines.back() != kTpm2BlobFooter) {
    return Corrupt(err, "it does not end with '" + std::string(kTpm2BlobFooter) + "' (truncated?)");
  }
  Parts parts;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string_view::npos) {
      return Corrupt(err, "line " + std::to_string(i + 1) + " is not 'name: value'");
    }
    std::string name(Trim(lines[i].substr(0, colon)));
    if (!parts.emplace(name, Trim(lines[i].substr(colon + 1))).second) {
      return Corrupt(err, "the '" + Printable(name, 40) + "' part appears twice");
    }
  }
  *out = std::move(parts);
  return 0;
}

// The parts that say which format this is: version 1, the owner hierarchy,
// the SHA-256 bank.
int CheckFormatParts(Parts* parts, std::string* err) {
  std::string_view v;
  if (!Take(parts, "version", &v)) return Corrupt(err, "the version part is missing");
  if (v != kVersion) {
    return Fail(err, -EBADMSG,
                "the TPM 2.0 blob has version '" + Printable(v, 20) +
                    "'; this hpcs-for-luks reads version 1 only");
  }
  if (!Take(parts, "hierarchy", &v) || v != kHierarchy) {
    return Corrupt(err, "the hierarchy part is missing or not 'owner'");
  }
  if (!Take(parts, "pcr-bank", &v) || v != kBank) {
    return Corrupt(err, "the pcr-bank part is missing or not 'sha256'");
  }
  return 0;
}

// The PCRs sealed to and their values.
int ParsePcrParts(Parts* parts, Tpm2Blob* blob, std::string* err) {
  std::string_view v;
  if (!Take(parts, "pcrs", &v) || ParsePcrList(v, &blob->pcrs) < 0) {
    return Corrupt(err, "the pcrs part is missing or not ascending PCR numbers from 0 to 23");
  }
  for (unsigned pcr : blob->pcrs) {
    PcrValue value;
    std::string name = "pcr " + std::to_string(pcr);
    if (!Take(parts, name, &v)) return Corrupt(err, "the '" + name + "' part is missing");
    if (!ParsePcrValue(v, &value)) {
      return Corrupt(err, "the '" + name + "' part is not 64 hex digits (a SHA-256 value)");
    }
    blob->pcr_values.push_back(value);
  }
  return 0;
}

// The TPM structures: the primary key's template (a storage key), the sealed
// object's public part (opened only by the PolicyPCR digest of blob->pcrs
// and their values) and its private part.
int ParseObjectParts(Parts* parts, Tpm2Blob* blob, std::string* err) {
  std::string_view v;
  if (!Take(parts, "primary-template", &v) ||
      !Unmarshal(v, Tss2_MU_TPM2B_PUBLIC_Unmarshal, &blob->primary_template)) {
    return Corrupt(err, "the primary-template part is missing or not a TPM2B_PUBLIC");
  }
  if (const char* why = CheckPrimaryTemplate(blob->primary_template.publicArea)) {
    return Corrupt(err, std::string("the primary-template part is ") + why);
  }
  if (Take(parts, "primary-name", &v) &&
      !ParsePrimaryName(v, blob->primary_template.publicArea.nameAlg, &blob->primary_name)) {
    return Corrupt(err,
                   "the primary-name part is not the name of a key of the primary template "
                   "(its name algorithm and digest, in hex)");
  }
  if (!Take(parts, "public", &v) ||
      !Unmarshal(v, Tss2_MU_TPM2B_PUBLIC_Unmarshal, &blob->public_area)) {
    return Corrupt(err, "the public part is missing or not a TPM2B_PUBLIC");
  }
  if (const char* why = CheckSealedObject(blob->public_area.publicArea)) {
    return Corrupt(err,
                   std::string("the public part is not a PCR-sealed data object (") + why + ")");
  }
  PcrValue policy = PcrPolicyDigest(blob->pcrs, blob->pcr_values);
  if (!std::equal(policy.begin(), policy.end(), blob->public_area.publicArea.authPolicy.buffer)) {
    return Corrupt(err,
                   "the public part's policy is not the PCR policy of the listed PCR values "
                   "(the public part or a 'pcr' line was altered)");
  }
  if (!Take(parts, "private", &v) ||
      !Unmarshal(v, Tss2_MU_TPM2B_PRIVATE_Unmarshal, &blob->private_area) ||
      blob->private_area.size == 0) {
    return Corrupt(err, "the private part is missing or not a TPM2B_PRIVATE");
  }
  return 0;
}

}  // namespace

int ParseTpm2Blob(std::string_view text, Tpm2Blob* out, std::string* err) {
  if (text.size() > kMaxTpm2BlobSize) {
    return Fail(err, -EFBIG,
                "the TPM 2.0 blob is " + std::to_string(text.size()) + " bytes, more than the " +
                    std::to_string(kMaxTpm2BlobSize) + " a sealed API key can need");
  }
  Parts parts;
  if (int rc = SplitParts(text, &parts, err)) return rc;
  if (int rc = CheckFormatParts(&parts, err)) return rc;
  Tpm2Blob blob;
  if (int rc = ParsePcrParts(&parts, &blob, err)) return rc;
  if (int rc = ParseObjectParts(&parts, &blob, err)) return rc;
  if (!parts.empty()) {
    return Corrupt(err, "it has an unknown part '" + Printable(parts.begin()->first, 40) + "'");
  }
  *out = std::move(blob);
  return 0;
}

std::string FormatTpm2Blob(const Tpm2Blob& blob) {
  std::string s;
  s.append(kTpm2BlobHeader).push_back('\n');
  s.append("version: ").append(kVersion).push_back('\n');
  s.append("hierarchy: ").append(kHierarchy).push_back('\n');
  s.append("pcr-bank: ").append(kBank).push_back('\n');
  s.append("pcrs:");
  for (unsigned pcr : blob.pcrs) s.append(" ").append(std::to_string(pcr));
  s.push_back('\n');
  for (size_t i = 0; i < blob.pcrs.size() && i < blob.pcr_values.size(); ++i) {
    s.append("pcr ").append(std::to_string(blob.pcrs[i])).append(": ");
    s.append(HexEncode(blob.pcr_values[i])).push_back('\n');
  }
  s.append("primary-template: ")
      .append(Marshal(blob.primary_template, Tss2_MU_TPM2B_PUBLIC_Marshal))
      .push_back('\n');
  if (blob.primary_name.size > 0) {
    s.append("primary-name: ")
        .append(HexEncode({blob.primary_name.name, blob.primary_name.size}))
        .push_back('\n');
  }
  s.append("public: ")
      .append(Marshal(blob.public_area, Tss2_MU_TPM2B_PUBLIC_Marshal))
      .push_back('\n');
  s.append("private: ")
      .append(Marshal(blob.private_area, Tss2_MU_TPM2B_PRIVATE_Marshal))
      .push_back('\n');
  s.append(kTpm2BlobFooter).push_back('\n');
  return s;
}

}  // namespace hpcs
