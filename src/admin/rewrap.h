// Day-two changes to the wrapped keys themselves:
//   rewrap: every key re-wrapped with the root key's newest version, by the
//     KMS's rewrap action (the plaintext never leaves the KMS); one failure
//     does not stop the others.
//   move (rewrap --to-crk): every key put under another root key, possibly
//     of another instance: unwrap, wrap, check the round trip, and only when
//     every key made it, replace them all, all or nothing also across a
//     crash (StagedFiles; the plaintexts stay in locked, wiped memory).
// Files are replaced atomically; what does not change is not written.
#ifndef HPCS_ADMIN_REWRAP_H_
#define HPCS_ADMIN_REWRAP_H_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
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

// The file-system steps of a commit (StagedFiles, RecoverStaged), each
// returning 0 or -errno; a test double fails one of them, or "crashes" there
// (it and every later step do nothing).
class FileOps {
 public:
  virtual ~FileOps() = default;
  // WriteFileAtomic.
  virtual int Write(const std::string& path, std::string_view data, mode_t mode, std::string* err);
  virtual int Link(const std::string& from, const std::string& to);
  virtual int Rename(const std::string& from, const std::string& to);
  // 0 also when there is no such file.
  virtual int Unlink(const std::string& path);
  virtual int SyncDir(const std::string& dir);
  static FileOps& Real();
};

// Files written beside their final place (hidden names the key directory
// readers skip) and put in place together by Commit, all or nothing, also
// across a crash: for each file, the new content is staged as
// `.<name>.staged` and the old one kept as a hard link `.<name>.old`; a
// journal in journal_dir (the key directory) lists each file before it is
// staged, and says when the renames begin. Files are renamed in the order staged (the config last);
// a failed rename puts back every file already renamed. After a crash, RecoverStaged finishes the
// commit (every staged file was complete before the journal was written) or finishes its rollback.
// Whatever was not committed is removed on destruction.
class StagedFiles {
 public:
  explicit StagedFiles(std::string journal_dir, FileOps* ops = &FileOps::Real());
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;
  ~StagedFiles();

  int Stage(const std::string& path, std::string_view data, mode_t mode, std::string* err);
  // Puts every staged file in place, or none: on a failure every file is as
  // it was (*err says so), unless putting them back failed too (*err says to
  // run the command again, and RecoverStaged finishes it).
  int Commit(std::string* err);
  void Discard();

  struct File {
    std::string path;
    bool had_old = false;  // path existed (its old content is `.<name>.old`)
  };

 private:
  std::string journal_dir_;
  FileOps* ops_;
  bool journal_written_ = false;
  std::vector<File> files_;
};

// The journal of an interrupted commit in journal_dir, carried to its end.
enum class Recovery {
  kNone,        // no journal: nothing was interrupted
  kFinished,    // every staged file is now in place
  kRolledBack,  // every file is as it was before the commit
};
int RecoverStaged(const std::string& journal_dir, Recovery* what, std::string* err,
                  FileOps* ops = &FileOps::Real());

// The config after a move, staged: default_crk_uuid = to_crk, and with a
// target config its whole [KP] section (endpoints, instance, API key) and its
// sealed API key (copied to config.tpm_blob). A config that will hold a
// literal API key is staged mode 0600 whatever its mode was (*mode_tightened
// then says whether that changed it), else with its mode.
int StageMovedConfig(const Config& config, const Config* target, const std::string& to_crk,
                     StagedFiles* staged, bool* mode_tightened, std::string* err);

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
