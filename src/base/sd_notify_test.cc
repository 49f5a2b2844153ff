#include "base/sd_notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "base/fd.h"

namespace hpcs {
namespace {

// A datagram socket bound to `name` (a path, or "@abstract"), as systemd's.
Fd Listen(const std::string& name) {
  Fd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, name.data(), name.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  if (name[0] == '@') addr.sun_path[0] = '\0';
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len), 0) << strerror(errno);
  return fd;
}

std::string Receive(int fd) {
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  return n < 0 ? "<nothing>" : std::string(buf, static_cast<size_t>(n));
}

class SdNotifyTest : public ::testing::Test {
 protected:
  void TearDown() override { unsetenv("NOTIFY_SOCKET"); }
};

TEST_F(SdNotifyTest, WithoutTheVariableNothingIsSent) {
  unsetenv("NOTIFY_SOCKET");
  std::string err;
  EXPECT_EQ(NotifyServiceManager("READY=1", &err), 0);
}

TEST_F(SdNotifyTest, SendsOneDatagramToAPathSocket) {
  char dir[] = "/tmp/sdnotify.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/notify";
  Fd l = Listen(path);
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  std::string err;
  ASSERT_EQ(NotifyServiceManager("READY=1\nSTATUS=waiting", &err), 1) << err;
  EXPECT_EQ(Receive(l.get()), "READY=1\nSTATUS=waiting");
  unlink(path.c_str());
  rmdir(dir);
}

TEST_F(SdNotifyTest, SendsToAnAbstractSocket) {
  std::string name = "@hpcs-sdnotify-test-" + std::to_string(getpid());
  Fd l = Listen(name);
  setenv("NOTIFY_SOCKET", name.c_str(), 1);
  std::string err;
  ASSERT_EQ(NotifyServiceManager("STATUS=x", &err), 1) << err;
  EXPECT_EQ(Receive(l.get()), "STATUS=x");
}

TEST_F(SdNotifyTest, ANameThatIsNoSocketIsAnError) {
  setenv("NOTIFY_SOCKET", "relative/name", 1);
  std::string err;
  EXPECT_EQ(NotifyServiceManager("READY=1", &err), -EINVAL);
  EXPECT_NE(err.find("relative/name"), std::string::npos);
  setenv("NOTIFY_SOCKET", "/nonexistent/hpcs/notify", 1);
  EXPECT_LT(NotifyServiceManager("READY=1", &err), 0);
  EXPECT_NE(err.find("/nonexistent/hpcs/notify"), std::string::npos);
}

}  // namespace
}  // namespace hpcs
