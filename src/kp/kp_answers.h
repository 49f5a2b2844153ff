// What the KMS and IAM answer, and what the client takes from it: pure
// parsers of the answer bodies (kp-api.md), no I/O. A 2xx answer that cannot
// be used is described by its status, length and content type only, never by
// its body: the body may hold a secret (an unwrapped key, a token, or the
// plaintext a broken server sends back).
#ifndef HPCS_KP_KP_ANSWERS_H_
#define HPCS_KP_KP_ANSWERS_H_

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"

namespace hpcs {

// One answer as it came: status, Content-Type, body.
struct KmsAnswer {
  long status = 0;
  std::string_view content_type;
  std::string_view body;
};

struct KeyInfo {
  std::string id;
  std::string name;
};

// "OP: unusable answer (HTTP 200, 57 bytes of application/json): WHAT".
std::string DescribeUnusable(std::string_view op, const KmsAnswer& a, std::string_view what);

// "HTTP 422 UNPROCESSABLE_CIPHERTEXT_ERR: <errorMsg>" from a KMS or IAM error
// body (not 2xx); non-JSON bodies are shown by their first printable bytes.
std::string DescribeHttpError(long status, std::string_view body);

// The IAM token answer: {"access_token": "...", "expires_in": SECONDS}.
// The lifetime is clamped to [kMinTokenLifetime, kMaxTokenLifetime]; without
// one it is an hour.
inline constexpr std::chrono::seconds kMinTokenLifetime{60};
inline constexpr std::chrono::seconds kMaxTokenLifetime{86400};
struct IamToken {
  Secret access_token;
  std::chrono::seconds lifetime{3600};
};
int ParseIamToken(const KmsAnswer& a, IamToken* out, std::string* err);

// One page of GET /api/v2/keys: the keys on it (an empty collection may
// leave out "resources" and have only "metadata").
int ParseKeyList(const KmsAnswer& a, std::vector<KeyInfo>* out, std::string* err);
// POST /api/v2/keys: the new key's id.
int ParseCreatedKey(const KmsAnswer& a, std::string* id, std::string* err);
// GET /api/v2/keys/ID: the key's metadata as pretty JSON, without "payload".
int ParseKeyMetadata(const KmsAnswer& a, std::string* json, std::string* err);
// actions/wrap: the ciphertext; and keyVersion.id into *key_version (when
// not nullptr; "" when the answer has none).
int ParseWrapped(const KmsAnswer& a, std::string* ciphertext, std::string* err,
                 std::string* key_version = nullptr);
// actions/unwrap: the plaintext, base64-decoded; keyVersion.id as for wrap.
int ParseUnwrapped(const KmsAnswer& a, Secret* plaintext, std::string* err,
                   std::string* key_version = nullptr);

}  // namespace hpcs

#endif  // HPCS_KP_KP_ANSWERS_H_
