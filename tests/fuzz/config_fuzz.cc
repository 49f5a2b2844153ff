// The configuration file parser (config.cc): any bytes, as /etc/hpcs-for-luks.ini;
// what parses is written back (FormatConfig) and read again to the same values.
#include <string>

#include "base/strutil.h"
#include "core/config.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
  using namespace hpcs;
  std::string_view text = fuzz::AsText(data, size);
  Config c;
  std::string err;
  int r = ParseConfig(text, "/etc/hpcs-for-luks.ini", &c, &err);
  if (r < 0) {
    FUZZ_CHECK(!err.empty(), "a refusal says why");
    return 0;
  }
  FUZZ_CHECK(c.endpoint_url.empty() || c.endpoint_url.back() != '/', "endpoint_url is trimmed");
  FUZZ_CHECK(c.iam_endpoint_url.empty() || c.iam_endpoint_url.back() != '/',
             "iam_endpoint_url is trimmed");
  FUZZ_CHECK(!c.key_dir.empty(), "key_dir always has a value");
  FUZZ_CHECK(!c.tpm_blob.empty(), "tpm_blob always has a value");
  FUZZ_CHECK(!(c.api_key_from_tpm && !c.api_key.empty()), "api_key is the word TPM or a key");
  std::string kerr;
  if (CheckKmsSettings(c, &kerr) < 0) FUZZ_CHECK(!kerr.empty(), "a refusal says why");
  // `hpcs-for-luks config --print` writes what ParseConfig reads back alike
  // (the dracut module builds the initramfs's config that way).
  Config again;
  std::string printed = FormatConfig(c, /*with_api_key=*/true);
  FUZZ_CHECK(ParseConfig(printed, c.path, &again, &err) == 0, err.c_str());
  for (const char* name : kConfigValueNames) {
    FUZZ_CHECK(ConfigValue(again, name) == ConfigValue(c, name), name);
  }
  FUZZ_CHECK(again.api_key.view() == c.api_key.view(), "the API key");
  FUZZ_CHECK(FormatConfig(again, true) == printed, "formatting is stable");
  return 0;
}
