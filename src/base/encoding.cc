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

}  // namespace hpcs
