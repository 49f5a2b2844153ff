#include "tpm/tpm2_tcti.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "tpm/tpm2.h"
#include "tpm/tpm2_testing.h"

namespace hpcs {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::ApiKey;
using testing::RunShell;
using testing::TempDir;
using testing::UnusedPort;
using testing::WriteFile;

TEST(TctiSpecTest, SplitsNameAndConfig) {
  TctiSpec s;
  std::string err;
  ASSERT_EQ(ParseTctiSpec("device:/dev/tpmrm0", &s, &err), 0) << err;
  EXPECT_EQ(s.name, "device");
  EXPECT_EQ(s.conf, "/dev/tpmrm0");
  ASSERT_EQ(ParseTctiSpec("swtpm:host=127.0.0.1,port=2321", &s, &err), 0) << err;
  EXPECT_EQ(s.name, "swtpm");
  EXPECT_EQ(s.conf, "host=127.0.0.1,port=2321");
  ASSERT_EQ(ParseTctiSpec("mssim", &s, &err), 0) << err;
  EXPECT_EQ(s.name, "mssim");
  EXPECT_EQ(s.conf, "");
  for (const char* bad : {"tabrmd:bus_type=system", "libtss2-tcti-device.so", "", ":x"}) {
    EXPECT_EQ(ParseTctiSpec(bad, &s, &err), -EINVAL) << bad;
    EXPECT_NE(err.find("unknown TCTI"), std::string::npos) << err;
    EXPECT_NE(err.find("swtpm:host=HOST,port=PORT"), std::string::npos) << err;
  }
}

TEST(Tpm2WithoutTpmTest, NoDeviceWaitsThenSaysSo) {
  TempDir root;
  TpmOptions o;
  o.fs_root = root.path();
  o.device_wait = milliseconds(300);
  auto tpm = MakeTpm2(o);
  std::string blob = "untouched", err;
  auto start = steady_clock::now();
  const unsigned pcrs[] = {7};
  EXPECT_EQ(tpm->Seal(ApiKey(), pcrs, &blob, &err), -ENODEV);
  EXPECT_GE(steady_clock::now() - start, milliseconds(300));
  EXPECT_NE(err.find("no TPM 2.0 device"), std::string::npos) << err;
  EXPECT_NE(err.find("/dev/tpmrm0"), std::string::npos) << err;
  EXPECT_EQ(blob, "untouched");
}

TEST(Tpm2WithoutTpmTest, Tpm12DeviceIsTheWrongKind) {
  TempDir root;
  RunShell("mkdir -p '" + root.path() + "/dev' '" + root.path() + "/sys/class/tpm/tpm0'");
  WriteFile(root.path() + "/dev/tpm0", "");
  WriteFile(root.path() + "/sys/class/tpm/tpm0/tpm_version_major", "1\n");
  TpmOptions o;
  o.fs_root = root.path();
  std::string blob, err;
  const unsigned pcrs[] = {7};
  EXPECT_EQ(MakeTpm2(o)->Seal(ApiKey(), pcrs, &blob, &err), -EMEDIUMTYPE);
  EXPECT_NE(err.find("is a TPM 1.2"), std::string::npos) << err;
  EXPECT_NE(err.find("seal-api-key --tpm1"), std::string::npos) << err;
}

TEST(Tpm2WithoutTpmTest, UnreachableTctiNamesIt) {
  TpmOptions o;
  o.tpm2_tcti = "swtpm:host=127.0.0.1,port=" + std::to_string(UnusedPort());
  std::string blob = "untouched", err;
  const unsigned pcrs[] = {7};
  EXPECT_EQ(MakeTpm2(o)->Seal(ApiKey(), pcrs, &blob, &err), -ECONNREFUSED);
  EXPECT_NE(err.find("cannot reach the TPM 2.0 at '" + o.tpm2_tcti + "'"), std::string::npos)
      << err;
  EXPECT_EQ(blob, "untouched");
}

}  // namespace
}  // namespace hpcs
