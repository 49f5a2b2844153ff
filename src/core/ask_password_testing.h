// A stand-in for systemd-cryptsetup asking for a passphrase, for tests: the
// ask file and its socket in a directory, as systemd's ask-password code
// writes them (the file last, by rename), and what came back.
#ifndef HPCS_CORE_ASK_PASSWORD_TESTING_H_
#define HPCS_CORE_ASK_PASSWORD_TESTING_H_

#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "base/fd.h"

namespace hpcs {

class TestAsker {
 public:
  // Asks in `dir` for `id` (e.g. "cryptsetup:/dev/vda"), as process `pid`.
  TestAsker(const std::string& dir, const std::string& name, const std::string& id,
            pid_t pid = getpid(), unsigned long long not_after_us = 0)
      : file_(dir + "/ask." + name), socket_(dir + "/sck." + name) {
    sock_ = Fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, socket_.data(), socket_.size());
    if (bind(sock_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
      abort();  // layers: test double
    std::string tmp = dir + "/tmp." + name;
    std::ofstream(tmp) << "[Ask]\nPID=" << pid << "\nSocket=" << socket_
                       << "\nAcceptCached=1\nEcho=0\nNotAfter=" << not_after_us
                       << "\nMessage=Please enter passphrase for disk test (" << name
                       << "):\nIcon=drive-harddisk\nId=" << id << "\n";
    if (rename(tmp.c_str(), file_.c_str()) < 0) abort();  // layers: test double
  }
  ~TestAsker() {
    unlink(file_.c_str());
    unlink(socket_.c_str());
  }
  TestAsker(const TestAsker&) = delete;
  TestAsker& operator=(const TestAsker&) = delete;

  // The answer, waiting up to `ms`; "" when none came.
  std::string Answer(int ms = 0) {
    pollfd p{sock_.get(), POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return "";
    char buf[512];
    ssize_t n = recv(sock_.get(), buf, sizeof buf, MSG_DONTWAIT);
    return n <= 0 ? "" : std::string(buf, static_cast<size_t>(n));
  }
  // The question is settled: the file goes, as systemd's does.
  void Withdraw() { unlink(file_.c_str()); }
  const std::string& file() const { return file_; }
  const std::string& socket() const { return socket_; }

 private:
  std::string file_, socket_;
  Fd sock_;
};

}  // namespace hpcs

#endif  // HPCS_CORE_ASK_PASSWORD_TESTING_H_
