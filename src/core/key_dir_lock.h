// One writer at a time in the key directory. Every writer of <key_dir> (the
// rotation store, `rewrap` with and without --to-crk and its journal's
// recovery, `seal-api-key` into the directory, hpcs-enroll through flock(1))
// holds an exclusive flock(2) on <key_dir>/.lock for its whole
// read-modify-write, so that no two of them interleave a check and a write.
// The file is no key: keys are under logon/ and user/ only. The lock goes
// with its holder's process; the holder writes "<pid> <program>" into the
// file, which a waiter that gives up names.
#ifndef HPCS_CORE_KEY_DIR_LOCK_H_
#define HPCS_CORE_KEY_DIR_LOCK_H_

#include <chrono>
#include <string>

#include "base/fd.h"

namespace hpcs {

class KeyDirLock {
 public:
  bool held() const { return fd_.get() >= 0; }
  const std::string& path() const { return path_; }
  void Release() { fd_.Close(); }

 private:
  friend int LockKeyDir(const std::string& key_dir, std::chrono::milliseconds wait,
                        KeyDirLock* lock, std::string* err);
  Fd fd_;
  std::string path_;
};

// <key_dir>/.lock
std::string KeyDirLockPath(const std::string& key_dir);

// How long the admin CLI waits for another writer.
inline constexpr std::chrono::milliseconds kKeyDirLockWait{10'000};

// Takes the lock of key_dir (making its file, mode 0600), waiting up to
// `wait` while another process holds it (0: one try). -EWOULDBLOCK when it
// stays held: *err names the lock file and the holder (pid and program) when
// it is known; other errors when the file cannot be opened or is not a
// regular file.
int LockKeyDir(const std::string& key_dir, std::chrono::milliseconds wait, KeyDirLock* lock,
               std::string* err);

}  // namespace hpcs

#endif  // HPCS_CORE_KEY_DIR_LOCK_H_
