// The kernel command line (cmdline.cc): any bytes, as /proc/cmdline, and
// what becomes of the URLs and resolve pins it gives (url.cc, kms.cc).
#include <string>

#include "core/cmdline.h"
#include "core/config.h"
#include "core/kms.h"
#include "fuzz_check.h"
#include "kp/url.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
  using namespace hpcs;
  std::string_view text = fuzz::AsText(data, size);
  for (const std::string& w : SplitKernelCmdline(text)) {
    FUZZ_CHECK(w.find('"') == std::string::npos, "quotes are removed from words");
  }
  BootOptions b = ParseBootOptions(text);
  if (b.timeout_s) FUZZ_CHECK(*b.timeout_s >= 1 && *b.timeout_s <= 86400, "timeout in range");
  for (const std::string& r : b.resolve) {
    FUZZ_CHECK(r.find(':') != std::string::npos, "a resolve pin is HOST:ADDRESS");
  }
  Config c;
  c.endpoint_url = "https://us-south.kms.cloud.ibm.com";
  c.path = "/etc/hpcs-for-luks.ini";
  c.iam_endpoint_url = "https://iam.cloud.ibm.com";
  const std::string endpoint = c.endpoint_url, iam = c.iam_endpoint_url;
  std::vector<std::string> refused;
  ApplyBootOptions(b, &c, &refused);
  // Secrets never go to a host the administrator did not name.
  FUZZ_CHECK(CheckBootUrl(BootUrlFor::kKms, endpoint, c.endpoint_url, nullptr) == 0,
             "the endpoint is https://HOST[:PORT], the configured host or a KMS host");
  FUZZ_CHECK(CheckBootUrl(BootUrlFor::kIam, iam, c.iam_endpoint_url, nullptr) == 0,
             "the IAM endpoint is https://HOST[:PORT], the configured host or an IAM host");
  // What the transport makes of the URLs and pins the command line gave.
  for (const std::string* url : {&c.endpoint_url, &c.iam_endpoint_url}) {
    HttpsUrl u;
    if (ParseHttpsUrl(*url, &u, nullptr) == 0) {
      FUZZ_CHECK(!u.host.empty() && u.port > 0 && u.port <= 65535, "a host and a port");
    }
  }
  std::vector<std::string> pins;
  std::string err;
  if (ExpandResolvePins(c, &pins, &err) < 0) FUZZ_CHECK(!err.empty(), "a refusal says why");
  return 0;
}
