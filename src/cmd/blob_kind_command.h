// `hpcs-for-luks tpm-blob-kind [--blob FILE]`: which TPM a sealed API key
// is for, "tpm1" or "tpm2" ("unknown" when the file is neither), decided by
// the TPM code (tpm/tpm.h BlobKind) that unseals it at boot. FILE defaults
// to [HFL] tpm_blob. The dracut module asks this to choose the drivers and
// whether tcsd goes in.
#ifndef HPCS_CMD_BLOB_KIND_COMMAND_H_
#define HPCS_CMD_BLOB_KIND_COMMAND_H_

#include "cmd/cli_verbs.h"

namespace hpcs {

// 0 printed, 1 the blob could not be read, is not trusted as hpcs-unlock
// trusts it (fileio.h CheckTrusted), or there is no TPM support (logged).
// The option of `tpm-blob-kind`: the blob to look at (default [HFL] tpm_blob).
inline constexpr Text kBlobKindBlob{"--blob"};

int BlobKindCommand(Context& ctx);

}  // namespace hpcs

#endif  // HPCS_CMD_BLOB_KIND_COMMAND_H_
