#include "base/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "base/error.h"
#include "base/fd.h"

namespace hpcs {

int NotifyServiceManager(std::string_view state, std::string* err) {
  const char* where = getenv("NOTIFY_SOCKET");
  if (!where || !*where) return 0;
  std::string_view name(where);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if ((name[0] != '/' && name[0] != '@') || name.size() >= sizeof(addr.sun_path)) {
    return Fail(err, -EINVAL, "NOTIFY_SOCKET='" + std::string(name) + "' is not a socket name");
  }
  memcpy(addr.sun_path, name.data(), name.size());
  if (name[0] == '@') addr.sun_path[0] = '\0';  // abstract: no terminating NUL is counted
  socklen_t len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (name[0] == '/'));
  Fd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return FailErrno(err, errno, "cannot make a socket for NOTIFY_SOCKET");
  ssize_t n = sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&addr), len);
  if (n < 0)
    return FailErrno(err, errno,
                     "cannot notify the service manager at '" + std::string(name) + "'");
  if (static_cast<size_t>(n) != state.size()) {
    return Fail(err, -EMSGSIZE, "short notification to '" + std::string(name) + "'");
  }
  return 1;
}

}  // namespace hpcs
