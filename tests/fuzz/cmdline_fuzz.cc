// The kernel command line (cmdline.cc): any bytes, as /proc/cmdline.
#include <string>

#include "cmdline.h"
#include "config.h"
#include "fuzz_check.h"

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
  ApplyBootOptions(b, &c);
  return 0;
}
