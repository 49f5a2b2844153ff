#include "core/key_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

#include "base/error.h"
#include "base/strutil.h"

namespace hpcs {

namespace {

constexpr auto kPoll = std::chrono::milliseconds(20);

// " (pid N, PROGRAM)" from what the holder wrote into the file, if that
// process is still there; "" when not known.
std::string Holder(int fd) {
  char buf[128];
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  std::string_view text = Trim(std::string_view(buf, static_cast<size_t>(n)));
  std::string pid(text.substr(0, text.find(' ')));
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos ||
      access(("/proc/" + pid).c_str(), F_OK) != 0) {
    return "";
  }
  std::string_view program = pid.size() < text.size() ? Trim(text.substr(pid.size())) : "";
  return " (pid " + pid + (program.empty() ? "" : ", " + Printable(program, 64)) + ")";
}

// The holder's mark: its pid and program, for a waiter that gives up.
void Mark(int fd) {
  std::string mark = std::to_string(getpid()) + " " + program_invocation_short_name + "\n";
  if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, mark.data(), mark.size(), 0);
}

}  // namespace

std::string KeyDirLockPath(const std::string& key_dir) { return key_dir + "/.lock"; }

int LockKeyDir(const std::string& key_dir, std::chrono::milliseconds wait, KeyDirLock* lock,
               std::string* err) {
  std::string path = KeyDirLockPath(key_dir);
  Fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600));
  if (fd.get() < 0) {
    int e = errno;
    return FailErrno(err, e, "cannot open the lock file '" + path + "'");
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Fail(err, -EINVAL, "the lock file '" + path + "' is not a regular file");
  }
  auto until = std::chrono::steady_clock::now() + wait;
  while (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) {
      int e = errno;
      return FailErrno(err, e, "cannot lock '" + path + "'");
    }
    if (std::chrono::steady_clock::now() >= until) {
      std::string waited = wait.count() <= 0 ? ""
                           : wait.count() % 1000 == 0
                               ? "; waited " + std::to_string(wait.count() / 1000) + " s"
                               : "; waited " + std::to_string(wait.count()) + " ms";
      return Fail(err, -EWOULDBLOCK,
                  "'" + path + "' is held by another writer of the key directory" +
                      Holder(fd.get()) + waited);
    }
    std::this_thread::sleep_for(kPoll);
  }
  Mark(fd.get());
  lock->fd_ = std::move(fd);
  lock->path_ = std::move(path);
  return 0;
}

}  // namespace hpcs
