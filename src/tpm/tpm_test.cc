#include "tpm/tpm.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tpm/tpm1_test_blob.h"
#include "tpm/tpm_testing.h"

namespace hpcs {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::RunShell;
using testing::ScopedEnv;
using testing::Str;
using testing::TempDir;
using testing::UnusedPort;
using testing::WriteFile;

constexpr auto kNoDeadline = steady_clock::time_point::max();

class FakeTpm : public Tpm {
 public:
  int rc = 0;
  std::string data;
  std::string error;
  std::string seen_blob;
  // When set, Unseal waits until release() (a TPM that does not answer).
  bool hang = false;
  TpmKind kind() const override { return TpmKind::kTpm2; }
  int Unseal(std::string_view blob_text, Secret* out, std::string* err) override {
    seen_blob = blob_text;
    if (hang) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return released_; });
    }
    if (rc) {
      if (err) *err = error;
      return rc;
    }
    *out = Secret::FromString(data);
    return 0;
  }
  int Seal(const Secret&, std::span<const unsigned>, std::string*, std::string*) override {
    return -ENOSYS;
  }
  int ReadPcr(unsigned, std::vector<uint8_t>*, std::string*) override { return -ENOSYS; }
  int ExtendPcr(unsigned, std::span<const uint8_t>, std::string*) override { return -ENOSYS; }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

// ---- UnsealApiKey with a fake TPM ----

TEST(UnsealApiKeyTest, StripsExactlyOneTrailingNewline) {
  const std::pair<std::string, std::string> cases[] = {
      {"key\n", "key"}, {"key", "key"}, {"key\n\n", "key\n"}, {"k\r\n", "k\r"}, {"\nkey", "\nkey"},
  };
  for (const auto& [sealed, want] : cases) {
    for (auto deadline : {kNoDeadline, steady_clock::now() + std::chrono::seconds(30)}) {
      auto tpm = std::make_shared<FakeTpm>();
      tpm->data = sealed;
      Secret out;
      std::string err;
      ASSERT_EQ(UnsealApiKey(tpm, "BLOB", deadline, &out, &err), 0) << err;
      EXPECT_EQ(Str(out), want);
      EXPECT_EQ(tpm->seen_blob, "BLOB");
    }
  }
}

TEST(UnsealApiKeyTest, RejectsEmptyKey) {
  for (const char* sealed : {"", "\n"}) {
    auto tpm = std::make_shared<FakeTpm>();
    tpm->data = sealed;
    Secret out = Secret::FromString("untouched");
    std::string err;
    EXPECT_EQ(UnsealApiKey(tpm, "BLOB", kNoDeadline, &out, &err), -ENODATA);
    EXPECT_NE(err.find("empty API key"), std::string::npos) << err;
    EXPECT_NE(err.find("seal-api-key"), std::string::npos) << err;
    EXPECT_EQ(Str(out), "untouched");
  }
}

TEST(UnsealApiKeyTest, PassesErrorsThrough) {
  for (auto deadline : {kNoDeadline, steady_clock::now() + std::chrono::seconds(30)}) {
    auto tpm = std::make_shared<FakeTpm>();
    tpm->rc = -EKEYREJECTED;
    tpm->error = "PCRs changed";
    Secret out = Secret::FromString("untouched");
    std::string err;
    EXPECT_EQ(UnsealApiKey(tpm, "BLOB", deadline, &out, &err), -EKEYREJECTED);
    EXPECT_EQ(err, "PCRs changed");
    EXPECT_EQ(Str(out), "untouched");
  }
}

TEST(UnsealApiKeyTest, GivesUpAtTheDeadlineWhenTheTpmDoesNotAnswer) {
  auto tpm = std::make_shared<FakeTpm>();
  tpm->hang = true;
  tpm->data = "late-key";
  Secret out = Secret::FromString("untouched");
  std::string err;
  auto start = steady_clock::now();
  EXPECT_EQ(UnsealApiKey(tpm, "BLOB", start + milliseconds(300), &out, &err), -ETIMEDOUT);
  auto took = steady_clock::now() - start;
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(3000));  // slack for a loaded machine
  EXPECT_NE(err.find("TPM 2.0 did not answer before the deadline"), std::string::npos) << err;
  EXPECT_EQ(Str(out), "untouched");
  // The worker still finishes into memory of its own, not ours.
  tpm->release();
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(Str(out), "untouched");
}

// ---- Blob kinds, machine kinds ----

TEST(TpmKindTest, BlobKindFromTheFirstLine) {
  EXPECT_EQ(BlobKind(testing::kTpmSealdataBlob), TpmKind::kTpm1);
  EXPECT_EQ(BlobKind("-----BEGIN TSS-----\r\nrest"), TpmKind::kTpm1);
  EXPECT_EQ(BlobKind("-----BEGIN HPCS TPM2 SEALED DATA-----\nversion: 1\n"), TpmKind::kTpm2);
  EXPECT_EQ(BlobKind("-----BEGIN HPCS TPM2 SEALED DATA-----"), TpmKind::kTpm2);
  EXPECT_EQ(BlobKind("-----BEGIN TSS-----X\n"), std::nullopt);
  EXPECT_EQ(BlobKind("api-key-in-clear\n"), std::nullopt);
  EXPECT_EQ(BlobKind(""), std::nullopt);
}

// A fake /dev and /sys under a temporary directory.
class FakeRoot {
 public:
  void Device(const char* name) { Write(std::string("/dev/") + name, ""); }
  void SysfsVersion(const char* v) { Write("/sys/class/tpm/tpm0/tpm_version_major", v); }
  TpmOptions Options() const {
    TpmOptions o;
    o.fs_root = dir_.path();
    return o;
  }

 private:
  void Write(const std::string& rel, const std::string& data) {
    std::string path = dir_.path() + rel;
    RunShell("mkdir -p \"$(dirname '" + path + "')\"");
    WriteFile(path, data);
  }
  TempDir dir_;
};

TEST(TpmKindTest, DetectsTheMachinesTpm) {
  {
    FakeRoot r;  // nothing: TPM 1.2 (tcsd is the way, and says what is wrong)
    EXPECT_EQ(DetectTpmKind(r.Options()), TpmKind::kTpm1);
    EXPECT_FALSE(HaveTpm2(r.Options()));
  }
  {
    FakeRoot r;
    r.Device("tpmrm0");
    EXPECT_EQ(DetectTpmKind(r.Options()), TpmKind::kTpm2);
  }
  {
    FakeRoot r;  // sysfs beats the device nodes
    r.Device("tpm0");
    r.SysfsVersion("1\n");
    EXPECT_EQ(DetectTpmKind(r.Options()), TpmKind::kTpm1);
    r.SysfsVersion("2\n");
    EXPECT_EQ(DetectTpmKind(r.Options()), TpmKind::kTpm2);
  }
  {
    FakeRoot r;  // a configured TCTI is a TPM 2.0
    TpmOptions o = r.Options();
    o.tpm2_tcti = "swtpm:port=1";
    EXPECT_EQ(DetectTpmKind(o), TpmKind::kTpm2);
  }
}

TEST(TpmKindTest, Tpm2TctiFromEnvironmentBeatsConfig) {
  {
    ScopedEnv e("HPCS_TPM2_TCTI", std::nullopt);
    EXPECT_EQ(ResolveTpm2Tcti("device:/dev/tpm0"), "device:/dev/tpm0");
    EXPECT_EQ(ResolveTpm2Tcti(""), "");
  }
  ScopedEnv e("HPCS_TPM2_TCTI", "swtpm:port=9");
  EXPECT_EQ(ResolveTpm2Tcti("device:/dev/tpm0"), "swtpm:port=9");
}

TEST(TpmKindTest, UnknownBlobIsRejectedNamingBothFormats) {
  Secret out;
  std::string err;
  EXPECT_EQ(UnsealApiKey("just-an-api-key\n", TpmOptions{}, &out, &err), -EBADMSG);
  EXPECT_NE(err.find("BEGIN TSS"), std::string::npos) << err;
  EXPECT_NE(err.find("BEGIN HPCS TPM2 SEALED DATA"), std::string::npos) << err;
  EXPECT_EQ(err.find("just-an-api-key"), std::string::npos) << err;
}

TEST(TpmKindTest, Tpm12BlobOnATpm20MachineSaysSo) {
  // No tcsd answers, and the machine has /dev/tpmrm0.
  ScopedEnv host("TSS_TCSD_HOSTNAME", "127.0.0.1");
  ScopedEnv port("TSS_TCSD_PORT", std::to_string(UnusedPort()));
  FakeRoot r;
  r.Device("tpmrm0");
  Secret out = Secret::FromString("untouched");
  std::string err;
  EXPECT_EQ(UnsealApiKey(testing::kTpmSealdataBlob, r.Options(), &out, &err), -EMEDIUMTYPE);
  EXPECT_NE(err.find("sealed to a TPM 1.2"), std::string::npos) << err;
  EXPECT_NE(err.find("is a TPM 2.0"), std::string::npos) << err;
  EXPECT_NE(err.find("seal-api-key --tpm2"), std::string::npos) << err;
  EXPECT_EQ(Str(out), "untouched");
  // Without a TPM 2.0 the problem is tcsd, and the message says that.
  FakeRoot none;
  EXPECT_EQ(UnsealApiKey(testing::kTpmSealdataBlob, none.Options(), &out, &err), -ECONNREFUSED);
  EXPECT_NE(err.find("cannot reach tcsd"), std::string::npos) << err;
}

// ---- PCR choice ----

TEST(PcrChoiceTest, Defaults) {
  EXPECT_EQ(DefaultPcrs(TpmKind::kTpm1), (std::vector<unsigned>{4, 5, kLockPcr}));
  EXPECT_EQ(DefaultPcrs(TpmKind::kTpm2), (std::vector<unsigned>{7, 8, kLockPcr}));
  EXPECT_EQ(PcrList(std::vector<unsigned>{7, 8, 16}), "7, 8, 16");
}

TEST(PcrChoiceTest, ParsesPcrArguments) {
  unsigned pcr = 99;
  std::optional<std::array<uint8_t, 32>> value;
  std::string err;
  ASSERT_EQ(ParsePcrArgument("7", &pcr, &value, &err), 0) << err;
  EXPECT_EQ(pcr, 7u);
  EXPECT_FALSE(value);
  const std::string hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
  ASSERT_EQ(ParsePcrArgument("23=" + hex, &pcr, &value, &err), 0) << err;
  EXPECT_EQ(pcr, 23u);
  ASSERT_TRUE(value);
  EXPECT_EQ((*value)[0], 0x00);
  EXPECT_EQ((*value)[9], 0x99);
  EXPECT_EQ((*value)[31], 0xff);
  const std::vector<std::string> bads = {"24",
                                         "-1",
                                         "x",
                                         "",
                                         "7=",
                                         "7=" + hex.substr(2),
                                         "7=" + hex + "00",
                                         "7=zz" + hex.substr(2),
                                         "=" + hex};
  for (const auto& bad : bads) {
    pcr = 99;
    EXPECT_EQ(ParsePcrArgument(bad, &pcr, &value, &err), -EINVAL) << bad;
    EXPECT_NE(err.find("--pcr"), std::string::npos) << err;
    EXPECT_EQ(pcr, 99u) << bad;
  }
}

bool Mentions(const std::vector<std::string>& warnings, std::string_view what) {
  for (const auto& w : warnings) {
    if (w.find(what) != std::string::npos) return true;
  }
  return false;
}

TEST(PcrChoiceTest, WarnsWhatThePcrsLeaveOpen) {
  // Neither the command line nor the initramfs.
  auto w = PcrCoverageWarnings(std::vector<unsigned>{4, 5});
  EXPECT_TRUE(Mentions(w, "do not cover the kernel command line")) << w.size();
  EXPECT_TRUE(Mentions(w, "rd.break"));
  EXPECT_TRUE(Mentions(w, "do not cover the initramfs"));
  EXPECT_TRUE(Mentions(w, "(4, 5)"));
  // GRUB's command line (8): only the initramfs is left.
  w = PcrCoverageWarnings(DefaultPcrs(TpmKind::kTpm2));
  EXPECT_FALSE(Mentions(w, "command line"));
  EXPECT_TRUE(Mentions(w, "do not cover the initramfs"));
  // A UKI's 11 and 12 cover both, but 11 measures the blob's own initramfs.
  w = PcrCoverageWarnings(std::vector<unsigned>{7, 11, 12});
  EXPECT_FALSE(Mentions(w, "command line"));
  EXPECT_FALSE(Mentions(w, "do not cover the initramfs"));
  EXPECT_TRUE(Mentions(w, "carries this blob"));
  // 12 alone is not the UKI's command line.
  EXPECT_TRUE(Mentions(PcrCoverageWarnings(std::vector<unsigned>{7, 12}),
                       "do not cover the kernel command line"));
  EXPECT_TRUE(Mentions(PcrCoverageWarnings(std::vector<unsigned>{8, 9}), "carries this blob"));
  // The lock PCR: named when left out, quiet when there.
  EXPECT_TRUE(Mentions(PcrCoverageWarnings(std::vector<unsigned>{7, 8}), "leave out PCR 15"));
  EXPECT_FALSE(Mentions(PcrCoverageWarnings(DefaultPcrs(TpmKind::kTpm1)), "leave out PCR"));
}

}  // namespace
}  // namespace hpcs
