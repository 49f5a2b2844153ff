// The TPM 2.0 sealed-data file (tpm2_blob.cc): any bytes, as the TPM blob in
// the key directory or the initramfs. What parses must format and parse again
// to the same blob.
#include <cstring>
#include <string>

#include "fuzz_check.h"
#include "tpm/tpm2_blob.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
  using namespace hpcs;
  Tpm2Blob blob;
  std::string err;
  if (ParseTpm2Blob(fuzz::AsText(data, size), &blob, &err) < 0) {
    FUZZ_CHECK(!err.empty(), "a refusal says why");
    return 0;
  }
  FUZZ_CHECK(!blob.pcrs.empty(), "at least one PCR");
  FUZZ_CHECK(blob.pcrs.size() == blob.pcr_values.size(), "a value for each PCR");
  for (unsigned pcr : blob.pcrs) FUZZ_CHECK(pcr <= kMaxTpm2Pcr, "PCR number in range");
  std::string text = FormatTpm2Blob(blob);
  Tpm2Blob again;
  FUZZ_CHECK(ParseTpm2Blob(text, &again, &err) == 0, err.c_str());
  FUZZ_CHECK(again.pcrs == blob.pcrs, "the PCR list survives formatting");
  FUZZ_CHECK(again.pcr_values == blob.pcr_values, "the PCR values survive formatting");
  FUZZ_CHECK(FormatTpm2Blob(again) == text, "formatting is stable");
  return 0;
}
