// HTTP transport: the seam between the Key Protect client and libcurl.
// An interface (ninja's DiskInterface habit) so unit tests can substitute a
// scripted transport. It is a sliding window, as curl's 10-at-a-time example:
// the caller starts exchanges whenever it likes, waits, gets each finished one
// back as soon as it is done, and may start the next at once. The curl
// implementation runs them all on one multi handle, keeping connections and
// TLS sessions for later exchanges.
#ifndef HPCS_KP_HTTP_H_
#define HPCS_KP_HTTP_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/secret.h"
#include "kp/http_text.h"

namespace hpcs {

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT, DELETE
  std::string url;
  std::vector<std::string> headers;  // "Name: value", nothing secret
  Secret auth_header;                // "Authorization: Bearer ...", kept apart
  Secret body;                       // sent with POST and PUT
  // The instance metadata service (kp/vpc_identity.h, which alone sets
  // this, for URLs CheckMetadataUrl allows): reached directly, never through
  // the proxy (it is link-local), and plain http:// is allowed. Every other
  // request is https:// only.
  bool metadata_service = false;
};

struct HttpResponse {
  long status = 0;  // 0 when no HTTP response arrived
  Secret body;
  // When status == 0: what went wrong (curl's words, with the URL's host),
  // and whether trying again could help (connection refused, reset, timeout).
  std::string transport_error;
  bool transport_retryable = false;
  bool timed_out = false;
  std::optional<long> retry_after_s;  // Retry-After in seconds, if sent
  std::string content_type;           // Content-Type, printable, if sent
  // The body passed kMaxAnswerBody: the transfer was cut off (status 0, not
  // worth retrying), though the server did answer.
  bool too_large = false;
};

// No answer of the KMS or IAM comes near this; a server that sends more is
// cut off rather than read into (locked) memory.
inline constexpr size_t kMaxAnswerBody = 1 << 20;

struct HttpExchange {
  HttpRequest request;
  HttpResponse response;
  size_t tag = 0;  // the caller's, handed back untouched (as CURLOPT_PRIVATE)
};

struct HttpOptions {
  std::string ca_file;               // PEM bundle; empty: the system store
  std::string proxy;                 // empty: none (no proxy variables either)
  std::vector<std::string> resolve;  // curl CURLOPT_RESOLVE "HOST:PORT:ADDRESS"
  long connect_timeout_ms = 10'000;
  long request_timeout_ms = 30'000;
  std::string user_agent = "hpcs-for-luks";
  // The clock is behind (cert_time.h): accept a certificate whose only fault
  // is a start date in the future (libcurl over mbedTLS only).
  bool forgive_future_start = false;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // Sends x->request once, alongside the exchanges already running; an
  // exchange still running at its deadline ends with timed_out set. *x must
  // stay where it is until Wait has handed it back.
  virtual void Start(HttpExchange* x, Deadline deadline) = 0;
  // Waits until at least one running exchange has finished (response or
  // error), or until `wake`, and appends the finished ones to *done: each
  // started exchange comes back exactly once. Returns at once when none is
  // running.
  virtual void Wait(Clock::time_point wake, std::vector<HttpExchange*>* done) = 0;
  // Started and not yet handed back by Wait.
  virtual size_t Running() const = 0;
  // Opens a connection to the host of `url` (TCP and TLS, no request) as
  // soon as every running exchange has sent its request, and closes it once
  // its handshake is done: the exchanges started after that resume its TLS
  // session and skip the certificate checks and key exchange of a full
  // handshake. Exchanges to that host started during its handshake wait
  // for it (at most half a second). Best effort: nothing comes back through
  // Wait, and a failure shows in the exchanges that follow. It only moves
  // forward while exchanges run (Wait).
  virtual void Preconnect(const std::string& url, Deadline deadline) = 0;
};

// The system CA bundles of Debian/Ubuntu, RHEL/Fedora (two names) and SUSE,
// in that order.
inline constexpr const char* kCaBundlePaths[] = {
    "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/ssl/ca-bundle.pem",
    "/var/lib/ca-certificates/ca-bundle.pem"};

// The first of kCaBundlePaths that is readable; "" when none is. The static
// build uses it when no ca_file is configured (its libcurl knows Debian's
// path only).
std::string FindCaBundle(const std::function<bool(const std::string&)>& readable);

// Where the certificates the connections trust come from: the CA bundle
// (options.ca_file, else the system's: in the static build the first of
// kCaBundlePaths that is readable, else libcurl's built-in one) and, but in
// the static build (which reads one bundle), libcurl's built-in CA directory,
// which it reads beside a ca_file too. Whoever can change one of them can
// answer for the KMS and IAM: the caller checks them (OpenKms).
std::vector<std::string> TrustedCaPaths(const HttpOptions& options);

// Global libcurl initialisation; call once from main before threads exist.
int HttpGlobalInit(std::string* err);

std::unique_ptr<HttpTransport> MakeCurlTransport(const HttpOptions& options);

}  // namespace hpcs

#endif  // HPCS_KP_HTTP_H_
