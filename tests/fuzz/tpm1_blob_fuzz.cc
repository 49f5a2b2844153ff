// The TPM 1.2 sealed-data file (tpm1_blob.cc): any bytes, as the TPM blob in
// the key directory or the initramfs. What parses must format and parse again
// to the same sections; the AES part must take any ciphertext.
#include <string>

#include "base/secret.h"
#include "fuzz_check.h"
#include "tpm/tpm1_blob.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
  using namespace hpcs;
  SealedBlob blob;
  std::string err;
  if (ParseSealedBlob(fuzz::AsText(data, size), &blob, &err) < 0) {
    FUZZ_CHECK(!err.empty(), "a refusal says why");
    return 0;
  }
  std::string text = FormatSealedBlob(blob);
  SealedBlob again;
  FUZZ_CHECK(ParseSealedBlob(text, &again, &err) == 0, err.c_str());
  FUZZ_CHECK(again.tss_key == blob.tss_key, "TSS KEY survives formatting");
  FUZZ_CHECK(again.enc_key == blob.enc_key, "ENC KEY survives formatting");
  FUZZ_CHECK(again.enc_data == blob.enc_data, "ENC DAT survives formatting");
  FUZZ_CHECK(FormatSealedBlob(again) == text, "formatting is stable");
  Secret key(kSealedDataKeySize);
  Secret plain;
  if (DecryptSealedData(key, blob.enc_data, &plain, &err) < 0) {
    FUZZ_CHECK(!err.empty(), "a refusal says why");
  }
  return 0;
}
