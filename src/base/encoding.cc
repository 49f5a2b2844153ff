#include "base/encoding.h"

#include <mbedtls/base64.h>

#include <cerrno>

namespace hpcs {
namespace {

// Decodes text into buf, which Size() first sizes; *n gets the real length.
template <typename Buf>
int Decode(std::string_view text, Buf* buf, size_t* n) {
  if (text.size() % 4 != 0) return -EINVAL;
  auto* src = reinterpret_cast<const unsigned char*>(text.data());
  size_t max = 0;
  if (mbedtls_base64_decode(nullptr, 0, &max, src, text.size()) ==
      MBEDTLS_ERR_BASE64_INVALID_CHARACTER) {
    return -EINVAL;
  }
  *buf = Buf(max);  // sized once: a Secret never reallocates here
  if (mbedtls_base64_decode(reinterpret_cast<unsigned char*>(buf->data()), max, n, src,
                            text.size()) != 0) {
    return -EINVAL;
  }
  return 0;
}

}  // namespace

std::string Base64Encode(std::span<const unsigned char> data) {
  size_t olen = 0;
  mbedtls_base64_encode(nullptr, 0, &olen, data.data(), data.size());
  std::string out(olen, '\0');
  if (mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &olen,
                            data.data(), data.size()) != 0) {
    return {};
  }
  out.resize(olen);
  return out;
}

std::string Base64Encode(std::span<const std::byte> data) {
  return Base64Encode(std::span(reinterpret_cast<const unsigned char*>(data.data()), data.size()));
}

int Base64Decode(std::string_view text, Secret* out) {
  Secret buf;
  size_t n = 0;
  if (int r = Decode(text, &buf, &n); r < 0) return r;
  buf.Truncate(n);
  *out = std::move(buf);
  return 0;
}

int Base64Decode(std::string_view text, std::vector<unsigned char>* out) {
  std::vector<unsigned char> buf;
  size_t n = 0;
  if (int r = Decode(text, &buf, &n); r < 0) return r;
  buf.resize(n);
  *out = std::move(buf);
  return 0;
}

std::array<char, 2> HexByte(unsigned char b, HexCase letters) {
  const char* digits = letters == HexCase::kUpper ? "0123456789ABCDEF" : "0123456789abcdef";
  return {digits[b >> 4], digits[b & 15]};
}

std::string HexEncode(std::span<const unsigned char> data) {
  std::string s;
  s.reserve(2 * data.size());
  for (unsigned char b : data) s.append(HexByte(b).data(), 2);
  return s;
}

int HexDecode(std::string_view text, std::vector<unsigned char>* out) {
  if (text.size() % 2 != 0) return -EINVAL;
  auto digit = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  std::vector<unsigned char> buf(text.size() / 2);
  for (size_t i = 0; i < buf.size(); ++i) {
    int hi = digit(text[2 * i]);
    int lo = digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return -EINVAL;
    buf[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  *out = std::move(buf);
  return 0;
}

}  // namespace hpcs
