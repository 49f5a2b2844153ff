// The hpcs LUKS2 token (core/hpcs_token.h) against the KMS: the passphrase it
// holds unwrapped, and a new token made from a passphrase, both bound to the
// volume's LUKS UUID through Key Protect's AAD.
#ifndef HPCS_CORE_TOKEN_OPEN_H_
#define HPCS_CORE_TOKEN_OPEN_H_

#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "core/config.h"
#include "core/hpcs_token.h"
#include "kp/kp_client.h"

namespace hpcs {

// A key slot's passphrase as a token holds it: 1 to 512 bytes, no NUL and no
// newline (cryptsetup reads a passphrase file up to its first newline).
inline constexpr size_t kMaxTokenPassphrase = 512;

// The passphrase `t` holds for the LUKS2 volume `luks_uuid`, unwrapped with
// the token's root key and HpcsTokenAad(luks_uuid); *key_version (may be
// nullptr) is the root key's version that made the ciphertext. -EXDEV
// (naming both) when the token's instance is not c.service_instance_id;
// -EINVAL for a malformed UUID; -EBADMSG when what comes back is no such
// passphrase; else the KpClient's -errno: -ETIMEDOUT or -EHOSTUNREACH when
// the KMS was not reached before the client's deadline (also when it gave
// only answers worth retrying, such as 503, until then), -EPROTO when it
// refused (a 422 for a token from another volume's header, a 404, ...).
int OpenHpcsToken(KpClient& kp, const Config& c, const HpcsToken& t, std::string_view luks_uuid,
                  Secret* passphrase, std::string* key_version, std::string* err);

// A token for `passphrase` (the shape above: -EBADMSG) of key slots
// `keyslots` of the volume `luks_uuid`, wrapped by the root key `crk` with
// the AAD; every field filled (kms and instance from the config, key_version
// from the answer). The wrapping is unwrapped once more and compared before
// it is returned: -EIO when the KMS gives back other bytes.
int WrapHpcsToken(KpClient& kp, const Config& c, std::string_view crk, std::string_view luks_uuid,
                  const Secret& passphrase, std::vector<int> keyslots, std::string name,
                  HpcsToken* out, std::string* err);

}  // namespace hpcs

#endif  // HPCS_CORE_TOKEN_OPEN_H_
