// The Key Protect calls of day-two operations, built on KpClient::Run: a
// root key's metadata (state, newest key version), the rewrap action, and
// what an unwrap says about key versions (kp-api.md section 4). The
// ciphertext stays opaque: which version wrapped it is what the service
// answers (keyVersion), never read from the ciphertext itself.
#ifndef HPCS_KP_KP_KEYS_H_
#define HPCS_KP_KP_KEYS_H_

#include <string>
#include <string_view>

#include "base/secret.h"
#include "kp/kp_client.h"

namespace hpcs {

// Key states (NIST SP 800-57, as Key Protect numbers them).
enum KeyState {
  kKeyPreActive = 0,
  kKeyActive = 1,
  kKeySuspended = 2,    // disabled: no action at all until enabled
  kKeyDeactivated = 3,  // expired: unwrap and rewrap only
  kKeyDestroyed = 5,    // deleted
};

// "active", "suspended (disabled)", ... for messages; "state N" otherwise.
std::string KeyStateName(int state);

struct KeyMetadata {
  std::string id;
  std::string name;
  int state = -1;
  bool deleted = false;
  bool extractable = false;  // a standard key, not a root key
  std::string key_version;   // the newest version: what wraps now
  std::string key_version_created;
  std::string last_rotated;  // empty when never rotated
};

// GET /api/v2/keys/<id>/metadata (no key material; served for deleted keys).
KpCall MakeKeyMetadataCall(std::string_view id);
int ParseKeyMetadata(const KpCall& call, KeyMetadata* out, std::string* err);

// What an unwrap answered, beyond the plaintext.
struct UnwrapDetails {
  Secret plaintext;
  std::string key_version;  // the version that wrapped the ciphertext sent
  // After a rotation: the same key wrapped with the newest version, which
  // the caller should store in place of the old ciphertext.
  std::string rewrapped_ciphertext;
  std::string rewrapped_key_version;
};
int ParseUnwrapDetails(const KpCall& call, UnwrapDetails* out, std::string* err);

// POST /api/v2/keys/<crk>/actions/rewrap: the ciphertext re-wrapped with the
// newest key version, inside the KMS (the plaintext never leaves it).
KpCall MakeRewrapCall(std::string_view crk, std::string_view ciphertext);
struct RewrapResult {
  std::string ciphertext;
  std::string key_version;            // of the ciphertext sent
  std::string rewrapped_key_version;  // of the new ciphertext
};
int ParseRewrap(const KpCall& call, RewrapResult* out, std::string* err);

// Runs one call (the client's retries and deadline apply); 0 or its result.
int RunKpCall(KpClient& kp, KpCall* call, std::string* err);

// True when the call failed because no IAM token could be had, so the KMS
// itself was never asked.
bool FailedForToken(const KpCall& call);

// A ciphertext the service returned, checked before it replaces a file:
// non-empty, one line of printable ASCII, at most 64 KiB.
bool PlausibleCiphertext(std::string_view ct);

}  // namespace hpcs

#endif  // HPCS_KP_KP_KEYS_H_
