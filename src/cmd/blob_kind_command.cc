#include "cmd/blob_kind_command.h"

#include <unistd.h>

#include <string>

#include "base/fileio.h"
#include "base/log.h"
#ifdef HPCS_HAVE_TPM
#include "tpm/tpm.h"
#include "tpm/tpm1_blob.h"
#endif

namespace hpcs {

int BlobKindCommand(Context& ctx) {
#ifdef HPCS_HAVE_TPM
  std::string path = ctx.args.Get(kBlobKindBlob);
  if (path.empty()) path = ctx.config.tpm_blob;
  std::string blob, err;
  if (ReadRegularFile(path, kMaxSealedBlobSize, &blob, nullptr, &err) < 0) {
    LogError("Failed to read the sealed API key: " + err);
    return kExitFail;
  }
  auto kind = BlobKind(blob);
  std::string out = !kind ? "unknown\n" : *kind == TpmKind::kTpm1 ? "tpm1\n" : "tpm2\n";
  if (WriteAllFd(STDOUT_FILENO, out, &err) < 0) {
    LogError("Failed to write to standard output: " + err);
    return kExitFail;
  }
  return kExitOk;
#else
  (void)ctx;
  LogError("tpm-blob-kind: this build has no TPM support (built with HPCS_TPM=OFF)");
  return kExitFail;
#endif
}

}  // namespace hpcs
