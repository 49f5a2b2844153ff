// The `hpcs` LUKS2 token (issue 25): a LUKS2 volume's passphrase wrapped by a
// Key Protect / HPCS root key, stored in the volume's own header, the
// wrapping bound to the volume's LUKS UUID by Key Protect's AAD. Pure model:
// parse, check, format, describe; no I/O.
#ifndef HPCS_CORE_HPCS_TOKEN_H_
#define HPCS_CORE_HPCS_TOKEN_H_

#include <string>
#include <string_view>
#include <vector>

namespace hpcs {

inline constexpr std::string_view kHpcsTokenType = "hpcs";
inline constexpr int kHpcsTokenVersion = 1;
// The one binding version 1 knows: the AAD is {"luks2-uuid:<uuid>"} with the
// UUID in lower case as `cryptsetup luksUUID` prints it.
inline constexpr std::string_view kBoundToLuksUuid = "luks2-uuid";

// The token's JSON (LUKS2 "tokens" member), every field required unless said:
//   "type":        "hpcs"
//   "keyslots":    ["1"]  the key slots the passphrase opens (LUKS2 spells
//                  them as strings of decimal digits), at least one
//   "version":     1      of this format; a reader refuses a newer one
//   "kms":         "https://us-south.kms.cloud.ibm.com"  the endpoint the
//                  passphrase was wrapped at (informational: the reader
//                  uses its config's, which must name the same instance)
//   "instance":    the Key Protect / HPCS instance id (Bluemix-Instance)
//   "crk":         the root key's id
//   "key_version": the root key's version the ciphertext was made with
//                  (keyVersion.id of the wrap answer; "" when unknown)
//   "bound_to":    "luks2-uuid"
//   "ciphertext":  Key Protect's ciphertext (base64, at most 4096 chars)
//   "name":        optional, a label (the DESC hpcs-enroll was given)
// Other members are refused (a typo must not pass unnoticed).
struct HpcsToken {
  std::vector<int> keyslots;
  int version = kHpcsTokenVersion;
  std::string kms;
  std::string instance;
  std::string crk;
  std::string key_version;
  std::string bound_to = std::string(kBoundToLuksUuid);
  std::string ciphertext;
  std::string name;
  bool operator==(const HpcsToken&) const = default;
};

// Parses and checks token JSON (what libcryptsetup's validate is given):
// -EINVAL with a message naming the member at fault.
int ParseHpcsToken(std::string_view json, HpcsToken* out, std::string* err);
// The token JSON, compact, members in the order above.
std::string FormatHpcsToken(const HpcsToken& t);
// The AAD list that binds a wrapping to the LUKS2 volume with this UUID;
// the UUID is checked (36 chars, hex and dashes) and lower-cased:
// -EINVAL on anything else.
int HpcsTokenAad(std::string_view luks_uuid, std::vector<std::string>* aad, std::string* err);
// The lines `cryptsetup luksDump` shows for the token (dump), each
// "\tNAME: VALUE"; the ciphertext shortened to its first 16 chars and its length.
std::vector<std::string> DescribeHpcsToken(const HpcsToken& t);

}  // namespace hpcs

#endif  // HPCS_CORE_HPCS_TOKEN_H_
