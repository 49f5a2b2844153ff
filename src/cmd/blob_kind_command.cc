#include "cmd/blob_kind_command.h"

#include <unistd.h>

#include <string>

#include "base/fileio.h"
#include "base/log.h"
#include "tpm/tpm.h"

namespace hpcs {

// What kind of TPM the blob was sealed to (its first line), for the dracut
// module; a build without TPM support answers "unknown" (tpm_none.cc). A
// blob that hpcs-unlock would refuse to unseal (CheckTrusted) is refused
// here too, so that the module never packs it as a root-owned copy.
int BlobKindCommand(Context& ctx) {
  std::string path = ctx.args.Get(kBlobKindBlob);
  if (path.empty()) path = ctx.config.tpm_blob;
  std::string blob, err;
  struct stat st;
  if (ReadRegularFile(path, kMaxSealedBlobSize, &blob, &st, &err) < 0) {
    LogError("Failed to read the sealed API key: " + err);
    return kExitFail;
  }
  if (CheckTrusted(path, st, &err) < 0) {
    LogError("Refusing the sealed API key: " + err);
    return kExitFail;
  }
  auto kind = BlobKind(blob);
  std::string out = !kind ? "unknown\n" : *kind == TpmKind::kTpm1 ? "tpm1\n" : "tpm2\n";
  if (WriteAllFd(STDOUT_FILENO, out, &err) < 0) {
    LogError("Failed to write to standard output: " + err);
    return kExitFail;
  }
  return kExitOk;
}

}  // namespace hpcs
