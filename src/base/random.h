// The one source of randomness: the kernel's CSPRNG through getrandom(2). It
// serves the key material of `--gen`, the correlation ids (UUIDs), the backoff
// jitter and the names of temporary files.
//
// There is no fallback. getrandom(2) waits until the kernel's pool is ready
// and then cannot fail for small reads; where it is missing (Linux < 3.17)
// RandomBytes reports the error and RandomU32 / NewUuid4, which have no way to
// report one, stop the program rather than hand out a predictable value.
#ifndef HPCS_BASE_RANDOM_H_
#define HPCS_BASE_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/secret.h"

namespace hpcs {

// Fills buf with n random bytes. 0, or -errno with the reason in *err.
int RandomBytes(void* buf, size_t n, std::string* err);

// n random bytes in a Secret (key material).
int RandomSecret(size_t n, Secret* out, std::string* err);

// A uniformly random 32-bit value.
uint32_t RandomU32();

// A random RFC 4122 version 4 UUID, lower-case hex with dashes.
std::string NewUuid4();

// n random bytes as 2n lower-case hex digits (temporary file names).
std::string RandomHex(size_t n);

}  // namespace hpcs

#endif  // HPCS_BASE_RANDOM_H_
