// Day-two changes to the wrapped keys themselves:
//   rewrap: every key re-wrapped with the root key's newest version, by the
//     KMS's rewrap action (the plaintext never leaves the KMS); one failure
//     does not stop the others.
//   move (rewrap --to-crk): every key put under another root key, possibly
//     of another instance: unwrap, wrap, check the round trip, and only when
//     every key made it, replace them all (the plaintexts stay in locked,
//     wiped memory).
// Files are replaced atomically; what does not change is not written.
#ifndef HPCS_ADMIN_REWRAP_H_
#define HPCS_ADMIN_REWRAP_H_

#include <string>
#include <vector>

#include "core/keystore.h"
#include "kp/kp_client.h"

namespace hpcs {

struct RewrapOutcome {
  StoredKey key;
  int result = 0;           // 0: done (or nothing to do)
  std::string error;        // why not, naming the file
  bool changed = false;     // the file holds a new ciphertext
  std::string old_version;  // key version that wrapped it before
  std::string new_version;  // key version that wraps it now
};

// Rewraps every key under key_dir with `crk`: one rewrap per key (all at
// once), then a second rewrap of each new ciphertext proves the KMS opens
// it before it replaces the file. Keys already at the newest version are
// left alone. Returns 0 when the key directory could be read.
int RewrapKeys(KpClient& kp, const std::string& key_dir, const std::string& crk,
               std::vector<RewrapOutcome>* outcomes, std::string* err);

// Files written beside their final place (hidden names the key directory
// readers skip) and put in place together by Commit; whatever was not
// committed is removed on destruction.
class StagedFiles {
 public:
  StagedFiles() = default;
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;
  ~StagedFiles();

  int Stage(const std::string& path, std::string_view data, mode_t mode, std::string* err);
  // Renames every staged file into place; on a failure the rest are still
  // tried, and *err names each one that failed.
  int Commit(std::string* err);
  void Discard();

 private:
  struct File {
    std::string tmp, path;
  };
  std::vector<File> files_;
};

// Moves every key under key_dir from `from_crk` (via `from`) to `to_crk`
// (via `to`, which may be the same client): unwrap, wrap, unwrap again and
// compare. When every key made it, each new ciphertext is staged in
// *staged (the caller commits it with the config change); otherwise nothing
// is staged. Returns 0 when every key can be moved, -1 when some cannot
// (each outcome says why), or negative when the key directory is unreadable.
int MoveKeys(KpClient& from, const std::string& from_crk, KpClient& to, const std::string& to_crk,
             const std::string& key_dir, StagedFiles* staged, std::vector<RewrapOutcome>* outcomes,
             std::string* err);

}  // namespace hpcs

#endif  // HPCS_ADMIN_REWRAP_H_
