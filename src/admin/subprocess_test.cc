#include "admin/subprocess.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

namespace hpcs {
namespace {

using namespace std::chrono_literals;

TEST(SubprocessTest, FeedsStdinAndCapturesBothStreams) {
  Secret in = Secret::FromString(std::string("line one\n\0binary", 16));
  ProcessOptions o;
  o.stdin_data = &in;
  ProcessResult r;
  std::string err;
  ASSERT_EQ(RunProcess({"sh", "-c", "cat; echo oops >&2; exit 3"}, o, &r, &err), 0) << err;
  EXPECT_EQ(r.exit_status, 3);
  EXPECT_EQ(r.out, std::string("line one\n\0binary", 16));
  EXPECT_EQ(r.err, "oops\n");
  EXPECT_EQ(DescribeProcessFailure(r), "exit status 3: oops");
}

TEST(SubprocessTest, NoStdinMeansDevNullAndCwdIsHonoured) {
  ProcessOptions o;
  o.cwd = "/";
  ProcessResult r;
  std::string err;
  ASSERT_EQ(RunProcess({"sh", "-c", "pwd; wc -c"}, o, &r, &err), 0) << err;
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_EQ(r.out, "/\n0\n");
}

TEST(SubprocessTest, MissingProgramIsAnError) {
  ProcessResult r;
  std::string err;
  EXPECT_EQ(RunProcess({"/nonexistent/prog"}, {}, &r, &err), -ENOENT);
  EXPECT_NE(err.find("/nonexistent/prog"), std::string::npos) << err;
  ProcessOptions o;
  o.cwd = "/nonexistent-dir";
  EXPECT_EQ(RunProcess({"true"}, o, &r, &err), -ENOENT);
}

TEST(SubprocessTest, AChildThatIgnoresItsStdinDoesNotHangOrKillUs) {
  Secret big(4 * 1024 * 1024);
  ProcessOptions o;
  o.stdin_data = &big;
  ProcessResult r;
  std::string err;
  ASSERT_EQ(RunProcess({"sh", "-c", "exit 0"}, o, &r, &err), 0) << err;
  EXPECT_EQ(r.exit_status, 0);
}

TEST(SubprocessTest, GivesUpAtTheDeadline) {
  ProcessOptions o;
  o.timeout = 300ms;
  ProcessResult r;
  std::string err;
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(RunProcess({"sleep", "30"}, o, &r, &err), 0) << err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_status, -1);
  EXPECT_EQ(r.signal, 9);
  EXPECT_EQ(DescribeProcessFailure(r), "did not finish in time (killed)");
}

// Whether process `pid` has ended (gone, or a zombie nobody reaped yet),
// waited for up to 3 s.
bool Ended(pid_t pid) {
  for (int i = 0; i < 30; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    size_t paren = line.rfind(')');
    if (paren != std::string::npos && line.compare(paren + 2, 1, "Z") == 0) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

TEST(SubprocessTest, ADeadlineAlsoKillsWhatTheChildStarted) {
  ProcessOptions o;
  o.timeout = 500ms;
  ProcessResult r;
  std::string err;
  ASSERT_EQ(RunProcess({"sh", "-c", "sleep 30 & echo $!; wait"}, o, &r, &err), 0) << err;
  EXPECT_TRUE(r.timed_out);
  pid_t grandchild = static_cast<pid_t>(std::stol("0" + r.out));
  ASSERT_GT(grandchild, 0) << r.out;
  EXPECT_TRUE(Ended(grandchild)) << "sleep " << grandchild << " outlived the deadline";
  kill(grandchild, SIGKILL);
}

TEST(SubprocessTest, OurFileDescriptorsDoNotReachTheProgram) {
  // As an fd curl or a library opened without O_CLOEXEC would be.
  int fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 3);
  ProcessResult r;
  std::string err;
  std::string probe = "if [ -e /proc/self/fd/" + std::to_string(fd) + " ]; then echo open; else " +
                      "echo closed; fi";
  ASSERT_EQ(RunProcess({"sh", "-c", probe}, {}, &r, &err), 0) << err;
  close(fd);
  EXPECT_EQ(r.out, "closed\n");
}

TEST(SubprocessTest, OutputIsCapped) {
  ProcessOptions o;
  o.max_output = 10;
  ProcessResult r;
  std::string err;
  ASSERT_EQ(RunProcess({"sh", "-c", "head -c 100000 /dev/zero"}, o, &r, &err), 0) << err;
  EXPECT_EQ(r.out.size(), 10u);
  EXPECT_EQ(r.exit_status, 0);
}

TEST(SubprocessTest, SecretStdoutGoesIntoASecretCappedToo) {
  ProcessOptions o;
  o.secret_stdout = true;
  o.max_output = 6;
  ProcessResult r;
  std::string err;
  ASSERT_EQ(RunProcess({"sh", "-c", "printf 'api_key = x\\n'; echo seen >&2"}, o, &r, &err), 0)
      << err;
  EXPECT_EQ(r.secret_out.view(), "api_ke");
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "seen\n");
}

}  // namespace
}  // namespace hpcs
