#include "base/fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace hpcs {
namespace {

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

int OpenDevNull() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

TEST(FdTest, ClosesWhenItGoesOutOfScope) {
  int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  {
    Fd fd(raw);
    EXPECT_EQ(fd.get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(FdTest, AMoveHandsOverTheOneOwner) {
  int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  Fd to;
  EXPECT_EQ(to.get(), -1);
  {
    Fd from(raw);
    Fd middle(std::move(from));
    EXPECT_EQ(from.get(), -1);  // NOLINT(bugprone-use-after-move): the moved-from state
    to = std::move(middle);
    EXPECT_EQ(middle.get(), -1);  // NOLINT(bugprone-use-after-move)
  }
  EXPECT_TRUE(IsOpen(raw));  // neither moved-from owner closed it
  EXPECT_EQ(to.get(), raw);
  to.Close();
  EXPECT_EQ(to.get(), -1);
  EXPECT_FALSE(IsOpen(raw));
  to.Close();  // a second Close is harmless
}

TEST(FdTest, AssigningClosesWhatItHeld) {
  int a = OpenDevNull();
  int b = OpenDevNull();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  Fd fd(a);
  fd = Fd(b);
  EXPECT_FALSE(IsOpen(a));
  EXPECT_TRUE(IsOpen(b));
  EXPECT_EQ(fd.get(), b);
}

TEST(FdTest, ReleaseGivesItUpOpen) {
  int raw = OpenDevNull();
  ASSERT_GE(raw, 0);
  {
    Fd fd(raw);
    EXPECT_EQ(fd.Release(), raw);
    EXPECT_EQ(fd.get(), -1);
  }
  EXPECT_TRUE(IsOpen(raw));
  EXPECT_EQ(close(raw), 0);
}

}  // namespace
}  // namespace hpcs
