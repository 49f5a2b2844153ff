#include "kp/ca_chain.h"

#include <curl/curl.h>
#include <mbedtls/error.h>
#include <mbedtls/x509_crt.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace hpcs {

CaChain::CaChain(std::unique_ptr<mbedtls_x509_crt> chain) : chain_(std::move(chain)) {}

CaChain::~CaChain() { mbedtls_x509_crt_free(chain_.get()); }

std::unique_ptr<CaChain> CaChain::Load(const std::string& path, std::string* err) {
  auto crt = std::make_unique<mbedtls_x509_crt>();
  mbedtls_x509_crt_init(crt.get());
  std::unique_ptr<CaChain> chain(new CaChain(std::move(crt)));
  // A positive result counts the certificates that could not be parsed.
  int ret = mbedtls_x509_crt_parse_file(chain->get(), path.c_str());
  if (ret < 0) {
    char why[160];
    mbedtls_strerror(ret, why, sizeof why);
    Fail(err, -EINVAL, "cannot read the CA bundle '" + path + "': " + why);
    return nullptr;
  }
  if (chain->size() == 0) {
    Fail(err, -EINVAL, "the CA bundle '" + path + "' holds no certificate");
    return nullptr;
  }
  return chain;
}

size_t CaChain::size() const {
  size_t n = 0;
  for (const mbedtls_x509_crt* c = chain_.get(); c && c->raw.len > 0; c = c->next) ++n;
  return n;
}

bool CurlOverMbedTls() {
  const curl_version_info_data* v = curl_version_info(CURLVERSION_NOW);
  return v && v->ssl_version && std::strncmp(v->ssl_version, "mbedTLS", 7) == 0;
}

}  // namespace hpcs
