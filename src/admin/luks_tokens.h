// The `hpcs` tokens of a LUKS2 volume (core/hpcs_token.h) as the admin CLI
// handles them: found in a header that admin/luks.h read, the volume's LUKS
// UUID (which the wrapping is bound to), a token opened with the KMS, and a
// token written into the header. Reading and writing go through the
// cryptsetup program, which works on a block device or an image file.
#ifndef HPCS_ADMIN_LUKS_TOKENS_H_
#define HPCS_ADMIN_LUKS_TOKENS_H_

#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "core/config.h"
#include "core/hpcs_token.h"
#include "core/luks2_metadata.h"
#include "kp/kp_client.h"

namespace hpcs {

// One hpcs token of a header, parsed.
struct VolumeToken {
  int id = -1;
  HpcsToken token;
};

// The header's hpcs tokens that parse, by id; for each one that does not,
// "token N: <why>" in *bad (may be null).
std::vector<VolumeToken> HpcsTokensOf(const LuksHeader& h, std::vector<std::string>* bad);

// `cryptsetup luksUUID`, lower-cased (the AAD's form). -EIO with the reason.
int ReadLuksUuid(const std::string& device, std::string* uuid, std::string* err);

// Writes token JSON as token `id` of the device (`cryptsetup token import
// --json-file -`, the JSON on stdin); `replace`: in place of the token
// there (--token-replace), which cryptsetup does in one header write, so a
// failure leaves the old token as it was.
int ImportLuksToken(const std::string& device, int id, std::string_view json, bool replace,
                    std::string* err);

// The passphrase of the device's hpcs token `token_id` (-1: its only one;
// -ENOENT none, -ENOTUNIQ more than one), unwrapped with the volume's LUKS
// UUID as AAD (core/token_open.h's OpenHpcsToken); *key_version (may be
// null) the root key's version that had wrapped it. Errors name the device
// and the token.
int OpenDeviceToken(KpClient& kp, const Config& c, const std::string& device, int token_id,
                    Secret* passphrase, std::string* key_version, std::string* err);

}  // namespace hpcs

#endif  // HPCS_ADMIN_LUKS_TOKENS_H_
