// The hpcs token's JSON (hpcs_token.cc), as the password agent and the
// token plugin's helper read it from a device's LUKS2 header, which any disk
// put into the machine may carry. What parses is written back
// (FormatHpcsToken) and read again to the same token; its dump lines are
// printable; and the UUID check of the AAD takes the input's first line.
#include <string>
#include <vector>

#include "core/hpcs_token.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
  using namespace hpcs;
  std::string_view text = fuzz::AsText(data, size);
  HpcsToken t;
  std::string err;
  if (ParseHpcsToken(text, &t, &err) < 0) {
    FUZZ_CHECK(!err.empty(), "a refusal says why");
  } else {
    FUZZ_CHECK(!t.keyslots.empty(), "a token opens at least one key slot");
    FUZZ_CHECK(t.version == kHpcsTokenVersion, "only version 1 is read");
    FUZZ_CHECK(t.bound_to == kBoundToLuksUuid, "bound to the LUKS UUID");
    HpcsToken again;
    std::string printed = FormatHpcsToken(t);
    FUZZ_CHECK(ParseHpcsToken(printed, &again, &err) == 0, "what is written reads back");
    FUZZ_CHECK(again == t, "to the same token");
    for (const std::string& line : DescribeHpcsToken(t)) {
      for (char c : line) {
        FUZZ_CHECK(c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f),
                   "luksDump's lines hold no control characters");
      }
    }
  }
  std::vector<std::string> aad;
  std::string uuid(text.substr(0, text.find('\n')));
  if (HpcsTokenAad(uuid, &aad, &err) == 0) {
    FUZZ_CHECK(aad.size() == 1 && aad[0].size() == 11 + 36, "one luks2-uuid:UUID");
    for (char c : aad[0].substr(11)) {
      FUZZ_CHECK(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'),
                 "the UUID in lower case");
    }
  } else {
    FUZZ_CHECK(!err.empty(), "a refusal says why");
  }
  return 0;
}
