// Following a rotation of the root key with no command at all: after a
// rotation, an unwrap of a key wrapped with an older key version also
// returns the key wrapped with the newest one (kp-api.md). `process` and the
// real root's hpcs-unlock store that newer ciphertext in place of the file,
// once it has been checked: it must unwrap to the same bytes.
#ifndef HPCS_CORE_ROTATION_H_
#define HPCS_CORE_ROTATION_H_

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "kp/kp_client.h"
#include "kp/kp_keys.h"

namespace hpcs {

// A wrapped-key file for which an unwrap handed back a newer wrapping.
struct RotatedKey {
  std::string path;
  std::string old_ciphertext;  // what the file held when it was unwrapped
  std::string new_ciphertext;
  std::string new_key_version;
  Secret plaintext;  // what the new ciphertext must unwrap to

  int result = 0;     // 0: the file now holds the new ciphertext
  std::string error;  // why not
};

// After an unwrap of `path` (which held old_ciphertext) answered with
// *details: when that answer carries a newer wrapping, takes it (and the
// plaintext, to check it against) into *keys; a newer wrapping that cannot
// be a ciphertext is refused in *error.
void NoteRotatedKey(const std::string& path, const std::string& old_ciphertext,
                    UnwrapDetails* details, std::vector<RotatedKey>* keys, std::string* error);

// Unwraps every new ciphertext (all at once); where it gives the same bytes
// and the file still holds the old ciphertext, replaces the file atomically,
// holding the lock of key_dir (key_dir_lock.h) from that check to the write.
// A lock that another writer holds past `lock_wait` leaves every file as it
// is (-EWOULDBLOCK, naming the holder). Wipes the plaintexts. Each key's
// result is in its RotatedKey.
void StoreRotatedKeys(KpClient& kp, std::string_view crk, const std::string& key_dir,
                      std::chrono::milliseconds lock_wait, std::vector<RotatedKey>* keys);

// Whether this process may store newer ciphertexts: the config allows it
// ([HFL] update_wrapped_keys) and it is not running in an initramfs (whose
// key directory is a copy in memory), which `initrd_release` (normally
// /etc/initrd-release, present in every systemd initramfs) tells.
bool MayUpdateWrappedKeys(bool configured, const std::string& initrd_release);
inline constexpr char kInitrdRelease[] = "/etc/initrd-release";

}  // namespace hpcs

#endif  // HPCS_CORE_ROTATION_H_
