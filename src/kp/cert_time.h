// Certificates and a clock that is behind. An initramfs on a machine without
// a working real-time clock starts with the clock at systemd's build date, and
// every current certificate is then "not yet valid". When the clock is before
// the date this program was built, and so certainly wrong, a certificate whose
// only fault is a start date in the future is accepted: the chain, the host
// name and the expiry are still checked.
//
// Done for libcurl over mbedTLS (the static hpcs-unlock) through curl's SSL
// context callback, which installs an mbedTLS verify callback.
#ifndef HPCS_KP_CERT_TIME_H_
#define HPCS_KP_CERT_TIME_H_

#include <curl/curl.h>

#include <cstdint>
#include <ctime>
#include <string>

namespace hpcs {

// The day this program was built (UTC midnight, from SOURCE_DATE_EPOCH when
// set), in seconds since the epoch.
std::time_t BuildTime();

// True when `now` is before BuildTime(): the clock cannot be right.
bool ClockBehindBuild(std::time_t now);

// "2001-01-01 00:00 UTC".
std::string FormatUtc(std::time_t t);

// mbedTLS verify flags (MBEDTLS_X509_BADCERT_*) of one certificate of a
// chain, less "starts in the future" (the certificate's and a CRL's).
uint32_t ForgiveFutureStart(uint32_t flags);

// The CURLOPT_SSL_CTX_FUNCTION that makes a transfer forgive a future start
// date, when this libcurl does TLS with mbedTLS; nullptr when it does not
// (then nothing is forgiven).
curl_ssl_ctx_callback CurlForgiveFutureStart();

}  // namespace hpcs

#endif  // HPCS_KP_CERT_TIME_H_
