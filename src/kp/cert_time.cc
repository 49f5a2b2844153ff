#include "kp/cert_time.h"

#include <mbedtls/x509.h>

#include "base/version.h"
#include "kp/ca_chain.h"

#ifdef HPCS_CURL_MBEDTLS
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#endif

namespace hpcs {
namespace {

#ifdef HPCS_CURL_MBEDTLS
// Called by mbedTLS for each certificate of the chain, after its checks.
int VerifyForgivingFutureStart(void*, mbedtls_x509_crt*, int, uint32_t* flags) {
  *flags = ForgiveFutureStart(*flags);
  return 0;
}

CURLcode InstallVerifyCallback(CURL*, void* ssl_ctx, void*) {
  // curl hands its mbedtls_ssl_config over before the handshake.
  mbedtls_ssl_conf_verify(static_cast<mbedtls_ssl_config*>(ssl_ctx), VerifyForgivingFutureStart,
                          nullptr);
  return CURLE_OK;
}
#endif

}  // namespace

std::time_t BuildTime() { return static_cast<std::time_t>(kHpcsBuildTime); }

bool ClockBehindBuild(std::time_t now) { return now < BuildTime(); }

std::string FormatUtc(std::time_t t) {
  struct tm tm {};
  char buf[32];
  if (!gmtime_r(&t, &tm) || strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm) == 0) {
    return std::to_string(static_cast<long long>(t)) + " s after the epoch";
  }
  return buf;
}

uint32_t ForgiveFutureStart(uint32_t flags) {
  return flags & ~static_cast<uint32_t>(MBEDTLS_X509_BADCERT_FUTURE | MBEDTLS_X509_BADCRL_FUTURE);
}

curl_ssl_ctx_callback CurlForgiveFutureStart() {
#ifdef HPCS_CURL_MBEDTLS
  // The SSL context is an mbedtls_ssl_config only if curl was built with it.
  if (CurlOverMbedTls()) return InstallVerifyCallback;
#endif
  return nullptr;
}

}  // namespace hpcs
