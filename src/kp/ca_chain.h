// The CA bundle as mbedTLS holds it, parsed once. libcurl over mbedTLS (the
// static hpcs-unlock) parses CURLOPT_CAINFO again for every connection: a
// system bundle of 144 certificates costs 4 to 7 ms of CPU each time here,
// and a boot with 16 keys opens 18 connections. The transport parses it once
// and hands the chain to each connection through curl's SSL context callback.
#ifndef HPCS_KP_CA_CHAIN_H_
#define HPCS_KP_CA_CHAIN_H_

#include <cstddef>
#include <memory>
#include <string>

struct mbedtls_x509_crt;

namespace hpcs {

// One owner of a parsed chain of trusted certificates.
class CaChain {
 public:
  // The certificates of a PEM or DER file. Like libcurl, it skips the ones
  // mbedTLS cannot parse as long as one is left. nullptr when the file cannot
  // be read or holds no certificate, with the reason in *err.
  static std::unique_ptr<CaChain> Load(const std::string& path, std::string* err);
  ~CaChain();
  CaChain(const CaChain&) = delete;
  CaChain& operator=(const CaChain&) = delete;

  size_t size() const;
  mbedtls_x509_crt* get() const { return chain_.get(); }

 private:
  explicit CaChain(std::unique_ptr<mbedtls_x509_crt> chain);
  std::unique_ptr<mbedtls_x509_crt> chain_;
};

// True when this libcurl does TLS with mbedTLS, so that its SSL context is an
// mbedtls_ssl_config (only in the static build).
bool CurlOverMbedTls();

}  // namespace hpcs

#endif  // HPCS_KP_CA_CHAIN_H_
