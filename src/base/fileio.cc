#include "base/fileio.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "base/error.h"
#include "base/fd.h"
#include "base/random.h"

namespace hpcs {
namespace {

enum class Trust { kAny, kTrusted, kTrustedNoFollow };

template <typename Buf>
int ReadInto(const std::string& path, size_t max_size, Trust trust, Buf* out, struct stat* st_out,
             std::string* err) {
  // O_NONBLOCK: opening a FIFO must not hang; we refuse it right after.
  int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  if (trust == Trust::kTrustedNoFollow) flags |= O_NOFOLLOW;
  Fd fd(open(path.c_str(), flags));
  if (fd.get() < 0 && errno == ELOOP && trust == Trust::kTrustedNoFollow) {
    return Fail(err, -ELOOP,
                "'" + path + "' is a symbolic link, which is not followed (put the file there)");
  }
  if (fd.get() < 0) return FailErrno(err, errno, "cannot open '" + path + "'");
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return FailErrno(err, errno, "cannot stat '" + path + "'");
  if (!S_ISREG(st.st_mode)) {
    return Fail(err, -EINVAL, "'" + path + "' is not a regular file");
  }
  if (trust != Trust::kAny) {
    if (int r = CheckTrusted(path, st, err); r < 0) return r;
  }
  if (static_cast<unsigned long long>(st.st_size) > max_size) {
    return Fail(err, -EFBIG,
                "'" + path + "' is larger than " + std::to_string(max_size) + " bytes");
  }
  Secret data;
  if (int r = ReadAllFd(fd.get(), max_size, &data, err); r < 0) {
    return WithContext(err, r, "cannot read '" + path + "': ");
  }
  if constexpr (std::is_same_v<Buf, Secret>) {
    *out = std::move(data);
  } else {
    out->assign(data.view());
  }
  if (st_out) *st_out = st;
  return 0;
}

}  // namespace

int ReadAllFd(int fd, size_t max_size, Secret* out, std::string* err) {
  Secret data;
  unsigned char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      Wipe(buf, sizeof buf);
      return FailErrno(err, e, "read error");
    }
    if (n == 0) break;
    if (data.size() + static_cast<size_t>(n) > max_size) {
      Wipe(buf, sizeof buf);
      return Fail(err, -EFBIG, "input larger than " + std::to_string(max_size) + " bytes");
    }
    data.Append(buf, static_cast<size_t>(n));
  }
  Wipe(buf, sizeof buf);
  *out = std::move(data);
  return 0;
}

int WriteAllFd(int fd, std::string_view data, std::string* err) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailErrno(err, errno, "write error");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

int ReadRegularFile(const std::string& path, size_t max_size, std::string* out, struct stat* st,
                    std::string* err) {
  return ReadInto(path, max_size, Trust::kAny, out, st, err);
}

int ReadRegularFileSecret(const std::string& path, size_t max_size, Secret* out, struct stat* st,
                          std::string* err) {
  return ReadInto(path, max_size, Trust::kAny, out, st, err);
}

int ReadTrustedFile(const std::string& path, size_t max_size, Follow follow, std::string* out,
                    struct stat* st, std::string* err) {
  return ReadInto(path, max_size, follow == Follow::kNo ? Trust::kTrustedNoFollow : Trust::kTrusted,
                  out, st, err);
}

int CheckTrusted(const std::string& path, const struct stat& st, std::string* err) {
  uid_t me = geteuid();
  if (st.st_uid != 0 && st.st_uid != me) {
    return Fail(err, -EPERM,
                "'" + path + "' is owned by uid " + std::to_string(st.st_uid) + ", not root" +
                    (me != 0 ? " or uid " + std::to_string(me) : "") +
                    ", so that user could change it (fix: chown root:root '" + path + "')");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Fail(err, -EPERM,
                "'" + path + "' is writable by group or others (mode " + mode +
                    "), so they could change it (fix: chmod go-w '" + path + "')");
  }
  return 0;
}

int CheckTrustedDir(const std::string& path, std::string* err) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return FailErrno(err, errno, "cannot stat '" + path + "'");
  if (!S_ISDIR(st.st_mode)) return Fail(err, -ENOTDIR, "'" + path + "' is not a directory");
  return CheckTrusted(path, st, err);
}

int WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode, std::string* err) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  // A dot-file: readers of the key directory skip it while it is incomplete.
  std::string tmp = dir + "/." + base + ".tmp" + RandomHex(4);
  Fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (fd.get() < 0) return FailErrno(err, errno, "cannot create '" + tmp + "'");
  std::string werr;
  int r = 0;
  if (fchmod(fd.get(), mode) != 0) {
    r = FailErrno(&werr, errno, "fchmod");
  } else if ((r = WriteAllFd(fd.get(), data, &werr)) == 0 && fsync(fd.get()) != 0) {
    r = FailErrno(&werr, errno, "fsync");
  }
  if (r == 0 && close(fd.Release()) != 0) r = FailErrno(&werr, errno, "close");
  if (r == 0 && rename(tmp.c_str(), path.c_str()) != 0) r = FailErrno(&werr, errno, "rename");
  if (r < 0) {
    unlink(tmp.c_str());
    return Fail(err, r, "cannot write '" + path + "': " + werr);
  }
  Fd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) fsync(dfd.get());
  return 0;
}

}  // namespace hpcs
