#include "cmd/key_files_command.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "base/fileio.h"
#include "base/log.h"
#include "core/keystore.h"

namespace hpcs {

int KeyFilesCommand(Context& ctx) {
  std::vector<StoredKey> keys;
  std::string err;
  if (ListStoredKeys(ctx.config.key_dir, &keys, nullptr, &err) < 0) {
    LogError("Refusing the key directory: " + err);
    return kExitFail;
  }
  std::string out;
  for (const StoredKey& k : keys) {
    std::string ciphertext;
    if (ReadWrappedKey(k.path, &ciphertext, &err) < 0) {
      LogError("Refusing a wrapped key: " + err);
      return kExitFail;
    }
    out.append(k.path).push_back('\0');
  }
  if (WriteAllFd(STDOUT_FILENO, out, &err) < 0) {
    LogError("Failed to write to standard output: " + err);
    return kExitFail;
  }
  return kExitOk;
}

}  // namespace hpcs
