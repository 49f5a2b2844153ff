#include "admin/metadata_access.h"

#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "base/error.h"

namespace hpcs {
namespace {

// What the child tells its parent by its exit status.
enum ChildExit { kConnected = 0, kRefused = 1, kNoUid = 2 };

// One non-blocking connect, waited for until the deadline.
bool Connects(const addrinfo* ai, int timeout_ms) {
  int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (s < 0) return false;
  bool ok = connect(s, ai->ai_addr, ai->ai_addrlen) == 0;
  if (!ok && errno == EINPROGRESS) {
    pollfd p{s, POLLOUT, 0};
    int soerr = 0;
    socklen_t len = sizeof soerr;
    ok = poll(&p, 1, timeout_ms) == 1 && getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
         soerr == 0;
  }
  close(s);
  return ok;
}

// After fork: only system calls, nothing that allocates (the parent may
// have threads).
[[noreturn]] void Child(uid_t uid, gid_t gid, const addrinfo* res, int timeout_ms) {
  if (uid != 0 && (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 ||
                   setresuid(uid, uid, uid) != 0)) {
    _exit(kNoUid);
  }
  bool ok = false;
  for (const addrinfo* ai = res; ai && !ok; ai = ai->ai_next) ok = Connects(ai, timeout_ms);
  _exit(ok ? kConnected : kRefused);
}

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};

}  // namespace

int ReachAs(uid_t uid, gid_t gid, const std::string& host, int port,
            std::chrono::milliseconds timeout, Reach* out, std::string* err) {
  const int ms = static_cast<int>(timeout.count());
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* raw = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &raw); rc != 0) {
    return Fail(err, -ENOENT, "cannot resolve '" + host + "': " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, AddrInfoDeleter> res(raw);
  pid_t pid = fork();
  if (pid < 0) return FailErrno(err, errno, "cannot fork to try " + host);
  if (pid == 0) Child(uid, gid, res.get(), ms);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return FailErrno(err, errno, "cannot wait for the child");
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const std::string who = "uid " + std::to_string(uid);
  switch (code) {
    case kConnected:
      *out = Reach::kConnected;
      return 0;
    case kRefused:
      *out = Reach::kRefused;
      return 0;
    case kNoUid:
      return Fail(err, -EPERM, "cannot run as " + who + " to try " + host);
    default:
      return Fail(err, -EIO, "the child trying " + host + " as " + who + " failed");
  }
}

}  // namespace hpcs
