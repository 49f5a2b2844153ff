// The IAM token that the initramfs hands to the real root when the TPM is
// locked (core/tpm_lock.h): once hpcs-unlock in the initramfs is done, the TPM
// no longer unseals the API key in this boot, yet the real root's run
// (hpcs-for-luks.service, for _netdev volumes) still needs to reach the KMS.
// It gets the bearer token of the initramfs's run instead: a `user` key in
// root's user keyring, never a file, readable by root only, with a kernel
// timeout of at most kMaxHandoffTtl (and never past the token's own expiry),
// taken once (read and revoked) by the real root's run.
#ifndef HPCS_CORE_TOKEN_HANDOFF_H_
#define HPCS_CORE_TOKEN_HANDOFF_H_

#include <keyutils.h>

#include <chrono>
#include <string>

#include "base/secret.h"

namespace hpcs {

inline constexpr char kHandoffKeyDescription[] = "hpcs-for-luks:iam-token";
inline constexpr std::chrono::seconds kMaxHandoffTtl{600};

// Adds the token to `keyring` (KEY_SPEC_USER_KEYRING at boot), replacing an
// older one, to expire after ttl (at most kMaxHandoffTtl; at least 1 s).
int HandOffToken(const Secret& token, std::chrono::seconds ttl, key_serial_t keyring,
                 std::string* err);

// Reads the token and revokes it: -ENOKEY when there is none (or it expired).
int TakeHandedToken(key_serial_t keyring, Secret* out, std::string* err);
// Reads the token and leaves it for the run that takes it (hpcs-unlock
// --token-open, for one volume of the real root, uses it on the way).
int ReadHandedToken(key_serial_t keyring, Secret* out, std::string* err);

}  // namespace hpcs

#endif  // HPCS_CORE_TOKEN_HANDOFF_H_
