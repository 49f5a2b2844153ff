// Base64 (RFC 4648, standard alphabet, with padding), the one codec for the
// KMS API's payloads and the TPM blob's sections. Decoding is strict: a
// length that is not a multiple of 4 or a character outside the alphabet is
// an error (both the KMS and tpm_sealdata always pad).
#ifndef HPCS_BASE_ENCODING_H_
#define HPCS_BASE_ENCODING_H_

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"

namespace hpcs {

std::string Base64Encode(std::span<const std::byte> data);
std::string Base64Encode(std::span<const unsigned char> data);

// -EINVAL on malformed input; *out is written only on success.
int Base64Decode(std::string_view text, Secret* out);
int Base64Decode(std::string_view text, std::vector<unsigned char>* out);

}  // namespace hpcs

#endif  // HPCS_BASE_ENCODING_H_
