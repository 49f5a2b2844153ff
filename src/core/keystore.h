// The wrapped-key directory, as IBM's hpcs-for-luks lays it out:
//   <key_dir>/logon/DESC   wrapped dm-crypt key  -> kernel key "logon" DESC
//   <key_dir>/user/DESC    wrapped passphrase    -> kernel key "user"  DESC
//   <key_dir>/linger/TYPE/DESC  marker: `wipe` leaves that key alone
// A wrapped-key file is the KMS ciphertext followed by one newline.
#ifndef HPCS_CORE_KEYSTORE_H_
#define HPCS_CORE_KEYSTORE_H_

#include <string>
#include <string_view>
#include <vector>

#include "core/keyring.h"

namespace hpcs {

struct StoredKey {
  KeyType type;
  std::string desc;  // the file name
  std::string path;
};

// Names that are not keys: dot-files (our temporary files are dot-files),
// editor and package-manager leftovers.
bool IsSkippedKeyFileName(std::string_view name);

// All keys under key_dir, sorted by type then description. A missing type
// directory is not an error. The directories must pass CheckTrusted (fileio.h).
// Symbolic links are listed (ReadWrappedKey refuses them, naming them); other
// entries that are not regular files are reported in *skipped.
int ListStoredKeys(const std::string& key_dir, std::vector<StoredKey>* out,
                   std::vector<std::string>* skipped, std::string* err);

inline constexpr size_t kMaxWrappedKeySize = 64 * 1024;

// Reads a wrapped key: a trusted regular file, not a symbolic link, of at most
// kMaxWrappedKeySize; surrounding white space removed, and it must be non-empty text.
int ReadWrappedKey(const std::string& path, std::string* ciphertext, std::string* err);

// The check ReadWrappedKey makes of the text (path only names it in *err).
int ParseWrappedKeyText(std::string_view text, const std::string& path, std::string* ciphertext,
                        std::string* err);

// Replaces a wrapped-key file atomically (temp file, fsync, rename), mode
// 0600: the ciphertext and one newline, as IBM's tool writes it.
int WriteWrappedKey(const std::string& path, std::string_view ciphertext, std::string* err);

bool HasLingerMarker(const std::string& key_dir, KeyType type, const std::string& desc);

}  // namespace hpcs

#endif  // HPCS_CORE_KEYSTORE_H_
