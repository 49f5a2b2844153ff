#include "admin/subprocess.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>

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
