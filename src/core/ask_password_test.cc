#include "core/ask_password.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/ask_password_testing.h"
#include "testing/test_doubles.h"

namespace hpcs {
namespace {

TEST(AskPasswordTest, ParsesWhatSystemdWrites) {
  AskRequest r;
  std::string err;
  ASSERT_EQ(ParseAskRequest("[Ask]\nPID=181\nSocket=/run/systemd/ask-password/sck.50ea\n"
                            "AcceptCached=1\nEcho=0\nNotAfter=123456\n"
                            "Message=Please enter passphrase for disk root (luks-x):\n"
                            "Icon=drive-harddisk\nId=cryptsetup:/dev/disk/by-uuid/x\n",
                            &r, &err),
            0)
      << err;
  EXPECT_EQ(r.pid, 181);
  EXPECT_EQ(r.socket, "/run/systemd/ask-password/sck.50ea");
  EXPECT_EQ(r.not_after_us, 123456u);
  EXPECT_EQ(r.id, "cryptsetup:/dev/disk/by-uuid/x");
  EXPECT_EQ(r.message, "Please enter passphrase for disk root (luks-x):");
  EXPECT_FALSE(r.echo);
}

TEST(AskPasswordTest, RefusesAFileWithoutWhatAnAnswerNeeds) {
  AskRequest r;
  std::string err;
  EXPECT_EQ(ParseAskRequest("PID=1\nSocket=/x\n", &r, &err), -EBADMSG);  // no [Ask]
  EXPECT_EQ(ParseAskRequest("[Ask]\nPID=1\n", &r, &err), -EBADMSG);
  EXPECT_NE(err.find("Socket"), std::string::npos);
  EXPECT_EQ(ParseAskRequest("[Ask]\nSocket=/x\n", &r, &err), -EBADMSG);
  EXPECT_EQ(ParseAskRequest("[Ask]\nPID=zero\nSocket=/x\n", &r, &err), -EBADMSG);
  EXPECT_EQ(ParseAskRequest("[Other]\nPID=1\nSocket=/x\n[Ask]\nId=y\n", &r, &err), -EBADMSG);
}

TEST(AskPasswordTest, TheDeviceOfACryptsetupRequestIsUnescaped) {
  AskRequest r;
  r.id = "cryptsetup:/dev/disk/by-uuid/0a1b\\x2dc";
  EXPECT_EQ(CryptsetupDevice(r), "/dev/disk/by-uuid/0a1b-c");
  r.id = "cryptsetup:/dev/block/253:3";
  EXPECT_EQ(CryptsetupDevice(r), "/dev/block/253:3");
  r.id = "cryptsetup:/dev/with\\040space";
  EXPECT_EQ(CryptsetupDevice(r), "/dev/with space");
  for (const char* other :
       {"", "cryptsetup-pin:/dev/vda", "cryptsetup:relative", "cryptsetup:/dev/bad\\q",
        "cryptsetup:/dev/cut\\x2", "cryptsetup:/dev/nul\\x00", "luks:/dev/vda"}) {
    r.id = other;
    EXPECT_EQ(CryptsetupDevice(r), std::nullopt) << other;
  }
}

TEST(AskPasswordTest, ARequestOfADeadProcessOrPastItsTimeIsNotLive) {
  AskRequest r;
  r.pid = getpid();
  EXPECT_TRUE(AskRequestLive(r, 1000));
  r.not_after_us = 999;
  EXPECT_FALSE(AskRequestLive(r, 1000));
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  r.pid = child;
  r.not_after_us = 0;
  EXPECT_FALSE(AskRequestLive(r, 1000));
}

TEST(AskPasswordTest, ReadsTheRequestsOfADirectoryAndAnswersOne) {
  ScratchDir dir;
  std::vector<AskRequest> found;
  std::string err;
  ASSERT_EQ(ReadAskRequests(dir.path() + "/missing", &found, nullptr, &err), 0);
  EXPECT_TRUE(found.empty());
  TestAsker a(dir.path(), "1", "cryptsetup:/dev/vda");
  dir.Write("ask.broken", "[Ask]\nId=x\n");
  dir.Write("other.file", "[Ask]\nPID=1\nSocket=/x\n");
  std::vector<std::string> skipped;
  ASSERT_EQ(ReadAskRequests(dir.path(), &found, &skipped, &err), 0) << err;
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].file, a.file());
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("ask.broken"), std::string::npos);
  ASSERT_EQ(AnswerAskRequest(found[0], Secret::FromString("s3cret"), &err), 0) << err;
  EXPECT_EQ(a.Answer(1000), "+s3cret");
}

TEST(AskPasswordTest, AnswersOnlyToASocketBesideTheRequest) {
  ScratchDir dir, elsewhere;
  TestAsker far(elsewhere.path(), "1", "cryptsetup:/dev/vda");
  TestAsker near(dir.path(), "2", "cryptsetup:/dev/vda");
  AskRequest r;
  r.file = dir.path() + "/ask.2";
  r.socket = far.socket();  // a socket of another directory
  std::string err;
  EXPECT_EQ(AnswerAskRequest(r, Secret::FromString("x"), &err), -EINVAL);
  EXPECT_NE(err.find("not in its directory"), std::string::npos);
  EXPECT_EQ(far.Answer(), "");
  r.socket = dir.path() + "/ask.2";  // not a socket
  EXPECT_EQ(AnswerAskRequest(r, Secret::FromString("x"), &err), -EINVAL);
  r.socket = near.socket();
  EXPECT_EQ(AnswerAskRequest(r, Secret("a\0b", 3), &err), -EINVAL);
  EXPECT_NE(err.find("NUL"), std::string::npos);
  EXPECT_EQ(near.Answer(), "");
}

}  // namespace
}  // namespace hpcs
