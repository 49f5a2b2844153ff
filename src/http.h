// HTTP transport: the seam between the Key Protect client and libcurl.
// An interface (ninja's DiskInterface habit) so unit tests can substitute a
// scripted transport. The curl implementation runs every exchange of a batch
// concurrently on one multi handle, keeping connections and TLS sessions for
// the next batch.
#ifndef HPCS_HTTP_H_
#define HPCS_HTTP_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "secret.h"

namespace hpcs {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

struct HttpRequest {
  std::string method = "GET";  // GET, POST, DELETE
  std::string url;
  std::vector<std::string> headers;  // "Name: value", nothing secret
  Secret auth_header;                // "Authorization: Bearer ...", kept apart
  Secret body;
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
};

struct HttpExchange {
  HttpRequest request;
  HttpResponse response;
};

struct HttpOptions {
  std::string ca_file;               // PEM bundle; empty: the system store
  std::string proxy;                 // empty: none (no proxy variables either)
  std::vector<std::string> resolve;  // curl CURLOPT_RESOLVE "HOST:PORT:ADDRESS"
  long connect_timeout_ms = 10'000;
  long request_timeout_ms = 30'000;
  std::string user_agent = "hpcs-for-luks";
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // Performs each exchange once, all at the same time, and returns when all
  // have a response or an error. Exchanges still running at the deadline end
  // with timed_out set. on_done, if given, is called for each exchange as
  // soon as it has finished, while the others are still running.
  virtual void Perform(std::span<HttpExchange* const> exchanges, Deadline deadline,
                       const std::function<void(HttpExchange&)>& on_done = {}) = 0;
};

// Global libcurl initialisation; call once from main before threads exist.
int HttpGlobalInit(std::string* err);

std::unique_ptr<HttpTransport> MakeCurlTransport(const HttpOptions& options);

// Percent-encodes for application/x-www-form-urlencoded and URL paths.
void UrlEncodeAppend(std::string_view in, Secret* out);
std::string UrlEncode(std::string_view in);

// "https://host:port/path" -> host and port (443 by default). False if the
// URL is not https:// or has no host.
bool SplitHttpsUrl(std::string_view url, std::string* host, int* port);

}  // namespace hpcs

#endif  // HPCS_HTTP_H_
