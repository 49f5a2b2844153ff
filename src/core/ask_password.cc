#include "core/ask_password.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "base/error.h"
#include "base/fd.h"
#include "base/fileio.h"
#include "base/strutil.h"

namespace hpcs {

namespace {

constexpr size_t kMaxAskFile = 64 * 1024;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Undoes systemd's cescape(): \\ \" \' \a \b \f \n \r \t \v, \xHH and \NNN
// (octal). False for an escape it does not know or one cut short.
bool CUnescape(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\') {
      out->push_back(in[i]);
      continue;
    }
    if (++i == in.size()) return false;
    static constexpr std::string_view kFrom = "\\\"'abfnrtv";
    static constexpr std::string_view kTo = "\\\"'\a\b\f\n\r\t\v";
    if (size_t k = kFrom.find(in[i]); k != std::string_view::npos) {
      out->push_back(kTo[k]);
    } else if (in[i] == 'x') {
      int hi = i + 1 < in.size() ? HexDigit(in[i + 1]) : -1;
      int lo = i + 2 < in.size() ? HexDigit(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (in[i] >= '0' && in[i] <= '7') {
      if (i + 2 >= in.size()) return false;
      int v = 0;
      for (size_t j = i; j < i + 3; ++j) {
        if (in[j] < '0' || in[j] > '7') return false;
        v = v * 8 + (in[j] - '0');
      }
      if (v > 255) return false;
      out->push_back(static_cast<char>(v));
      i += 2;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int ParseAskRequest(std::string_view text, AskRequest* out, std::string* err) {
  *out = AskRequest{};
  bool in_ask = false, seen_ask = false, have_pid = false;
  for (const std::string& raw : Split(text, '\n')) {
    std::string_view line = Trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      in_ask = line == "[Ask]";
      seen_ask |= in_ask;
      continue;
    }
    if (!in_ask) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = Trim(line.substr(0, eq)), value = Trim(line.substr(eq + 1));
    unsigned long long n = 0;
    if (key == "Socket") {
      out->socket = value;
    } else if (key == "Id") {
      out->id = value;
    } else if (key == "Message") {
      out->message = value;
    } else if (key == "PID") {
      if (!ParseUint(value, &n) || n == 0 || n > 0x7fffffff) {
        return Fail(err, -EBADMSG, "PID=" + std::string(value) + " is not a process id");
      }
      out->pid = static_cast<pid_t>(n);
      have_pid = true;
    } else if (key == "NotAfter") {
      if (!ParseUint(value, &n)) {
        return Fail(err, -EBADMSG, "NotAfter=" + std::string(value) + " is not a number");
      }
      out->not_after_us = n;
    } else if (key == "Echo") {
      out->echo = value == "1" || value == "yes" || value == "true";
    }
  }
  if (!seen_ask) return Fail(err, -EBADMSG, "no [Ask] section");
  if (out->socket.empty()) return Fail(err, -EBADMSG, "no Socket=");
  if (!have_pid) return Fail(err, -EBADMSG, "no PID=");
  return 0;
}

int ReadAskRequests(const std::string& dir, std::vector<AskRequest>* out,
                    std::vector<std::string>* skipped, std::string* err) {
  out->clear();
  DIR* d = opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return 0;
    return FailErrno(err, errno, "cannot read '" + dir + "'");
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (std::string_view(e->d_name).starts_with("ask.")) names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    std::string path = dir + "/" + name, text, why;
    struct stat st {};
    if (ReadRegularFile(path, kMaxAskFile, &text, &st, &why) < 0) {
      if (skipped) skipped->push_back(why);  // gone in between: answered already
      continue;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
      if (skipped) skipped->push_back("'" + path + "' is not root's: ignored");
      continue;
    }
    AskRequest r;
    if (ParseAskRequest(text, &r, &why) < 0) {
      if (skipped) skipped->push_back("'" + path + "': " + why);
      continue;
    }
    r.file = path;
    out->push_back(std::move(r));
  }
  return 0;
}

std::optional<std::string> CryptsetupDevice(const AskRequest& r) {
  std::string_view id = r.id;
  if (!id.starts_with("cryptsetup:")) return std::nullopt;
  std::string path;
  if (!CUnescape(id.substr(strlen("cryptsetup:")), &path)) return std::nullopt;
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos) return std::nullopt;
  return path;
}

bool AskRequestLive(const AskRequest& r, uint64_t now_us) {
  if (r.not_after_us != 0 && now_us > r.not_after_us) return false;
  return kill(r.pid, 0) == 0 || errno == EPERM;
}

int AnswerAskRequest(const AskRequest& r, const Secret& passphrase, std::string* err) {
  if (std::find(passphrase.view().begin(), passphrase.view().end(), '\0') !=
      passphrase.view().end()) {
    return Fail(err, -EINVAL, "the passphrase has a NUL byte, which the asker would cut off");
  }
  size_t slash = r.file.rfind('/');
  std::string dir = slash == std::string::npos ? "" : r.file.substr(0, slash + 1);
  if (dir.empty() || !r.socket.starts_with(dir) ||
      r.socket.find('/', dir.size()) != std::string::npos) {
    return Fail(err, -EINVAL,
                "the socket '" + r.socket + "' of '" + r.file + "' is not in its directory");
  }
  struct stat st {};
  if (lstat(r.socket.c_str(), &st) < 0) {
    return FailErrno(err, errno, "cannot answer at '" + r.socket + "'");
  }
  if (!S_ISSOCK(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid())) {
    return Fail(err, -EINVAL, "'" + r.socket + "' is not a socket of root's");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (r.socket.size() >= sizeof(addr.sun_path)) {
    return Fail(err, -ENAMETOOLONG, "'" + r.socket + "' is too long a socket name");
  }
  memcpy(addr.sun_path, r.socket.data(), r.socket.size());
  Fd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return FailErrno(err, errno, "cannot make a socket");
  Secret reply;
  reply.Append("+");
  reply.Append(passphrase.view());
  ssize_t n = sendto(fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  if (n < 0) return FailErrno(err, errno, "cannot answer at '" + r.socket + "'");
  return 0;
}

}  // namespace hpcs
