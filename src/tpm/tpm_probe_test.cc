#include "tpm/tpm_probe.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "tpm/tpm2_tcti.h"
#include "tpm/tpm_testing.h"

namespace hpcs {
namespace {

using testing::TempDir;
using testing::WriteFile;

// A fake /dev and /sys under a temporary directory.
class FakeTree {
 public:
  FakeTree& Node(const char* name) {
    Write("/dev/" + std::string(name), "");
    return *this;
  }
  FakeTree& Version(const char* major) {
    Write("/sys/class/tpm/tpm0/tpm_version_major", std::string(major) + "\n");
    return *this;
  }
  const std::string& root() const { return dir_.path(); }
  TpmOptions Options() const {
    TpmOptions o;
    o.fs_root = root();
    return o;
  }

 private:
  void Write(const std::string& rel, const std::string& data) {
    std::filesystem::path p = dir_.path() + rel;
    std::filesystem::create_directories(p.parent_path());
    WriteFile(p.string(), data);
  }
  TempDir dir_;
};

TEST(TpmProbeTest, NoTpm) {
  FakeTree t;
  TpmProbe p = ProbeTpm(t.root());
  EXPECT_FALSE(p.kind.has_value());
  EXPECT_EQ(p.basis, TpmProbe::Basis::kNone);
  EXPECT_EQ(p.node, "");
}

TEST(TpmProbeTest, ResourceManagerNodeIsATpm20) {
  FakeTree t;
  t.Node("tpm0").Node("tpmrm0");
  TpmProbe p = ProbeTpm(t.root());
  EXPECT_EQ(p.kind, TpmKind::kTpm2);
  EXPECT_EQ(p.basis, TpmProbe::Basis::kResourceManager);
  EXPECT_EQ(p.node, "/dev/tpmrm0");
}

TEST(TpmProbeTest, LoneTpm0WithoutVersionIsATpm12) {
  FakeTree t;
  t.Node("tpm0");
  TpmProbe p = ProbeTpm(t.root());
  EXPECT_EQ(p.kind, TpmKind::kTpm1);
  EXPECT_EQ(p.basis, TpmProbe::Basis::kLoneDevice);
  EXPECT_EQ(p.node, "/dev/tpm0");
}

TEST(TpmProbeTest, SysfsVersionDecides) {
  FakeTree one;
  one.Node("tpm0").Version("1");
  TpmProbe p = ProbeTpm(one.root());
  EXPECT_EQ(p.kind, TpmKind::kTpm1);
  EXPECT_EQ(p.basis, TpmProbe::Basis::kSysfs);
  EXPECT_EQ(p.node, "/dev/tpm0");

  FakeTree two;  // a TPM 2.0 whose resource manager node is missing: tpm0 is opened
  two.Node("tpm0").Version("2");
  p = ProbeTpm(two.root());
  EXPECT_EQ(p.kind, TpmKind::kTpm2);
  EXPECT_EQ(p.basis, TpmProbe::Basis::kSysfs);
  EXPECT_EQ(p.node, "/dev/tpm0");

  FakeTree early;  // sysfs is there, the node not yet (devtmpfs still adding it)
  early.Version("2");
  p = ProbeTpm(early.root());
  EXPECT_EQ(p.kind, TpmKind::kTpm2);
  EXPECT_EQ(p.node, "");

  FakeTree odd;  // a version we do not know is no answer: the nodes decide
  odd.Node("tpm0").Node("tpmrm0").Version("7");
  p = ProbeTpm(odd.root());
  EXPECT_EQ(p.kind, TpmKind::kTpm2);
  EXPECT_EQ(p.basis, TpmProbe::Basis::kResourceManager);
}

// What sealing picks and what unsealing a TPM 2.0 blob opens come from the
// same probe: on every tree they agree.
TEST(TpmProbeTest, SealAndUnsealAgree) {
  struct Case {
    const char* name;
    bool tpm0, tpmrm0;
    const char* version;
  };
  const Case cases[] = {
      {"only /dev/tpm0", true, false, nullptr}, {"tpm0, version 1", true, false, "1"},
      {"tpm0, version 2", true, false, "2"},    {"tpmrm0", true, true, nullptr},
      {"tpmrm0, version 2", true, true, "2"},
  };
  for (const Case& c : cases) {
    FakeTree t;
    if (c.tpm0) t.Node("tpm0");
    if (c.tpmrm0) t.Node("tpmrm0");
    if (c.version) t.Version(c.version);
    TpmOptions o = t.Options();
    TctiSpec spec;
    std::string where, err;
    int rc = tpm2::ChooseTcti(o, &spec, &where, &err);
    if (DetectTpmKind(o) == TpmKind::kTpm2) {
      EXPECT_TRUE(HaveTpm2(o)) << c.name;
      EXPECT_EQ(rc, 0) << c.name << ": " << err;
      EXPECT_EQ(spec.name, "device") << c.name;
      EXPECT_EQ(spec.conf, t.root() + ProbeTpm(t.root()).node) << c.name;
    } else {
      EXPECT_FALSE(HaveTpm2(o)) << c.name;
      EXPECT_EQ(rc, -EMEDIUMTYPE) << c.name;
      EXPECT_NE(err.find("is a TPM 1.2"), std::string::npos) << c.name << ": " << err;
      EXPECT_NE(err.find("seal-api-key --tpm1"), std::string::npos) << c.name << ": " << err;
    }
  }
}

TEST(TpmProbeTest, LoneTpm0NamesTheWayToATpm20OnAnOldKernel) {
  FakeTree t;
  t.Node("tpm0");
  TctiSpec spec;
  std::string where, err;
  ASSERT_EQ(tpm2::ChooseTcti(t.Options(), &spec, &where, &err), -EMEDIUMTYPE);
  EXPECT_NE(err.find("no /dev/tpmrm0"), std::string::npos) << err;
  EXPECT_NE(err.find("tpm2_tcti = device:/dev/tpm0"), std::string::npos) << err;
  // ... and naming it is obeyed: the configured TCTI is not second-guessed.
  TpmOptions o = t.Options();
  o.tpm2_tcti = "device:" + t.root() + "/dev/tpm0";
  ASSERT_EQ(tpm2::ChooseTcti(o, &spec, &where, &err), 0) << err;
  EXPECT_EQ(spec.conf, t.root() + "/dev/tpm0");
  EXPECT_EQ(DetectTpmKind(o), TpmKind::kTpm2);
}

}  // namespace
}  // namespace hpcs
