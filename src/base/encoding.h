// The encodings of bytes as text, each written once.
//
// Base64 (RFC 4648, standard alphabet, with padding), the one codec for the
// KMS API's payloads and the TPM blob's sections. Decoding is strict: a
// length that is not a multiple of 4 or a character outside the alphabet is
// an error (both the KMS and tpm_sealdata always pad).
//
// Hex, two digits a byte: lower case for what we write (PCR values, UUIDs,
// temporary names, \xNN escapes), upper case where a standard asks for it
// (percent-encoding, RFC 3986 2.1); either case is read.
#ifndef HPCS_BASE_ENCODING_H_
#define HPCS_BASE_ENCODING_H_

#include <array>
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

enum class HexCase { kLower, kUpper };

// The two hex digits of one byte, without allocating (for text that holds a
// secret, such as a percent-encoded API key).
std::array<char, 2> HexByte(unsigned char b, HexCase letters = HexCase::kLower);

// Lower-case hex of the bytes.
std::string HexEncode(std::span<const unsigned char> data);

// Hex digits of either case to bytes. -EINVAL on an odd length or a character
// that is not a hex digit; *out is written only on success.
int HexDecode(std::string_view text, std::vector<unsigned char>* out);

}  // namespace hpcs

#endif  // HPCS_BASE_ENCODING_H_
