#include "admin/metadata_access.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace hpcs {
namespace {

using namespace std::chrono_literals;

// A listening socket on 127.0.0.1, on a free port.
struct Listener {
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), len) == 0 && listen(fd, 4) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
  }
  ~Listener() { close(fd); }
  int fd = -1;
  int port = 0;
};

TEST(MetadataAccessTest, AListeningPortIsReachedAClosedOneIsNot) {
  Listener l;
  ASSERT_NE(l.port, 0);
  Reach reach = Reach::kRefused;
  std::string err;
  ASSERT_EQ(ReachAs(getuid(), getgid(), "127.0.0.1", l.port, 2s, &reach, &err), 0) << err;
  EXPECT_EQ(reach, Reach::kConnected);
  const int closed = l.port;
  close(l.fd);
  l.fd = -1;
  ASSERT_EQ(ReachAs(getuid(), getgid(), "127.0.0.1", closed, 2s, &reach, &err), 0) << err;
  EXPECT_EQ(reach, Reach::kRefused);
}

TEST(MetadataAccessTest, AsAnotherUser) {
  if (getuid() != 0) GTEST_SKIP() << "needs root to take another uid";
  Listener l;
  Reach reach = Reach::kRefused;
  std::string err;
  ASSERT_EQ(ReachAs(65534, 65534, "127.0.0.1", l.port, 2s, &reach, &err), 0) << err;
  EXPECT_EQ(reach, Reach::kConnected);
}

TEST(MetadataAccessTest, ANameThatDoesNotResolveIsAnError) {
  Reach reach;
  std::string err;
  EXPECT_EQ(ReachAs(getuid(), getgid(), "no-such-host.invalid", 80, 1s, &reach, &err), -ENOENT);
  EXPECT_NE(err.find("no-such-host.invalid"), std::string::npos) << err;
}

}  // namespace
}  // namespace hpcs
