#include "tpm.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
// clang-format off
// tss.h must come first: trousers.h uses its types.
#include <trousers/tss.h>
#include <trousers/trousers.h>
// clang-format on

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace hpcs {
namespace {

// Written by `tpm_sealdata -z -p 4 -p 5` (tpm-tools 1.3.9.2) on swtpm from
// `echo my-api-key-123`. Used for format tests only; no TPM can unseal it.
constexpr std::string_view kTpmSealdataBlob =
    "-----BEGIN TSS-----\n"
    "-----TSS KEY-----\n"
    "AQEAAAARAAAABAEAAAABAAMAAQAAAAwAAAgAAAAAAgAAAAAAAAAAAAABAL6/ynfB\n"
    "sNdEY/UxA9WpU1xU0yIPa+vTxlS3/SLd2cHQOGE9MKvImBMQ2kknCt7OYS5O2rPo\n"
    "HbegIaM3LxRqKoVUDowYQ0w5odneod/qKFQClcv61/yNlkNtSW0ZiKigVMUuup+F\n"
    "OKzRg3cCBNmVWRvwIsmSNpC43HpIRvr1ydEtKnSlSl50/XgZ6alTbwu/I1CRMmL8\n"
    "1Kie7qIknlnwKiX6ttNlZymVhWv2y0I1R3GD76A7sIwVyq4fgxOBbH+gJkr4RZ4z\n"
    "ey/qLvKYECKpkI4jcALFqmhDQKtxhOaNI7BB2LHXsOnt9hg2ErwX8bOJnOAtKSk0\n"
    "T4PymJdptWGbUtkAAAEAf+ZCLLfORDG1fiCFqz33QF/uoWvqIq50gzSGoIZng19s\n"
    "108FrnaeXf19N3grSkZ2QjpUwtgkoss+xK9OAXR83bt6kSNAEH22S4cEGodzsjEX\n"
    "D9HDLCEMgPs8tUGgh2rr1+ftqY0H58ZovZxaEeZ45UG6uu8TmXRByEK3sQv5Ypx+\n"
    "Bl3OtGSbDcFMIUqHP5nbfIPSVK7li6yCFonqifPoV74Ion8+leIW2x6a+VtbG6cr\n"
    "HD3O7DdNU/dausnCQp5j87E0R6cDwZxSlkVZcZtLTuRN+RcVqKQXDNbPcUq9mcX9\n"
    "20lovUQZSPDccKaiC/6MZfmNzrm5cr9FfWtabCyP0w==\n"
    "-----ENC KEY-----\n"
    "Symmetric Key: AES-256-CBC\n"
    "AQEAAAAAACwAAjAAz3BA34xL8/Zzz1QFXQe+mKmChdLPcEDfjEvz9nPPVAVdB76Y\n"
    "qYKF0gAAAQB+0cg+z8quLiIhu3TQ3nQQUJgvGDyH/UdJ0uY9UWYEVba3Ub2NQZfQ\n"
    "RJfS/Cmvqij32LCL7Nsqi+3s88GMsfHBhDyl1Yceb1HEehtAjGzgnXKqVUsg89L+\n"
    "p+i+/XOXpdfCGkeClOQzWZYIQX2IWYx9ZpZB0zixjFZAmBoWkd5jeEAu0JFxeAhI\n"
    "68yqZPQTusr6UmZup89Ym4rsjML4PaIryixZRcpOb+NeYBya7Bq2NLIk7AxNp8FA\n"
    "TPa8iDs1K+51jT/Gispde44vMeEnZ5cLmYmrmaIgcS6n46w+07HWPOL2ozXZwnYR\n"
    "42Tr3/0R4Ep18XmxzhFTvMHdnAZk76Pw\n"
    "-----ENC DAT-----\n"
    "k9D/zR9PPJwIfifImkJGYQ==\n"
    "-----END TSS-----\n";

std::string Str(const Secret& s) { return std::string(s.view()); }

Secret KeyBytes(unsigned char first) {
  Secret k(32);
  for (size_t i = 0; i < k.size(); ++i) k.data()[i] = first + i;
  return k;
}

std::string Replace(std::string s, std::string_view from, std::string_view to) {
  size_t pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

// ---- Format, no TPM ----

TEST(SealedBlobTest, ParsesTpmSealdataOutput) {
  SealedBlob b;
  std::string err;
  ASSERT_EQ(ParseSealedBlob(kTpmSealdataBlob, &b, &err), 0) << err;
  EXPECT_EQ(b.tss_key.size(), 559u);  // TPM_KEY for a 2048-bit key
  EXPECT_EQ(b.tss_key[0], 0x01);      // TPM_STRUCT_VER 1.1.0.0
  EXPECT_EQ(b.enc_key.size(), 312u);  // TPM_STORED_DATA, 256-byte RSA part
  EXPECT_EQ(b.enc_data.size(), 16u);  // "my-api-key-123\n" + PKCS#7 padding
}

TEST(SealedBlobTest, FormatIsByteForByteTpmSealdatas) {
  SealedBlob b;
  ASSERT_EQ(ParseSealedBlob(kTpmSealdataBlob, &b, nullptr), 0);
  EXPECT_EQ(FormatSealedBlob(b), kTpmSealdataBlob);
}

TEST(SealedBlobTest, RoundTripsEveryDataLength) {
  SealedBlob sample;
  ASSERT_EQ(ParseSealedBlob(kTpmSealdataBlob, &sample, nullptr), 0);
  std::mt19937 rng(7);
  for (size_t blocks = 1; blocks <= 100; ++blocks) {
    SealedBlob b = sample;
    b.enc_data.resize(16 * blocks);  // every base64 padding and line layout
    for (auto& c : b.enc_data) c = static_cast<unsigned char>(rng());
    std::string text = FormatSealedBlob(b);
    // OpenSSL's base64 BIO layout: 64 characters a line, every line ended.
    std::istringstream lines(text);
    for (std::string l; std::getline(lines, l);) EXPECT_LE(l.size(), 64u);
    EXPECT_EQ(text.back(), '\n');
    SealedBlob p;
    std::string err;
    ASSERT_EQ(ParseSealedBlob(text, &p, &err), 0) << blocks << ": " << err;
    EXPECT_EQ(p.tss_key, b.tss_key);
    EXPECT_EQ(p.enc_key, b.enc_key);
    EXPECT_EQ(p.enc_data, b.enc_data);
  }
}

TEST(SealedBlobTest, RejectsMalformedTpmStructures) {
  SealedBlob sample;
  ASSERT_EQ(ParseSealedBlob(kTpmSealdataBlob, &sample, nullptr), 0);
  struct Case {
    const char* name;
    std::function<void(SealedBlob*)> mutate;
    const char* expected;
  };
  const Case cases[] = {
      {"key truncated", [](SealedBlob* b) { b->tss_key.resize(100); },
       "TSS KEY section is not a TPM storage key blob (bad public key)"},
      {"key cut by one", [](SealedBlob* b) { b->tss_key.pop_back(); },
       "TSS KEY section is not a TPM storage key blob"},
      {"key with a byte more", [](SealedBlob* b) { b->tss_key.push_back(0); }, "(trailing bytes)"},
      {"key not storage", [](SealedBlob* b) { b->tss_key[5] = 0x10; }, "(not a storage key)"},
      {"key huge size field", [](SealedBlob* b) { b->tss_key[35] = 0xff; },
       "TSS KEY section is not a TPM storage key blob"},
      {"sealed data truncated", [](SealedBlob* b) { b->enc_key.resize(20); },
       "ENC KEY section is not TPM sealed data"},
      {"sealed data bad PCR info", [](SealedBlob* b) { b->enc_key[9] = 0x09; },  // sizeOfSelect
       "ENC KEY section is not TPM sealed data (bad PCR info)"},
      {"sealed data trailing", [](SealedBlob* b) { b->enc_key.push_back(1); }, "(trailing bytes)"},
  };
  for (const auto& c : cases) {
    SealedBlob b = sample;
    c.mutate(&b);
    SealedBlob out;
    std::string err;
    EXPECT_EQ(ParseSealedBlob(FormatSealedBlob(b), &out, &err), -EBADMSG) << c.name;
    EXPECT_NE(err.find(c.expected), std::string::npos) << c.name << ": " << err;
  }
}

TEST(SealedBlobTest, AcceptsCrlfAndTrailingBlankLines) {
  std::string crlf;
  for (char c : kTpmSealdataBlob) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  crlf += "\r\n\n  \n";
  SealedBlob b;
  std::string err;
  EXPECT_EQ(ParseSealedBlob(crlf, &b, &err), 0) << err;
  // No newline after the footer.
  std::string s(kTpmSealdataBlob);
  s.pop_back();
  EXPECT_EQ(ParseSealedBlob(s, &b, &err), 0) << err;
}

struct BadBlob {
  const char* name;
  std::string text;
  const char* expected;  // a piece of the message
};

TEST(SealedBlobTest, RejectsMalformedBlobsNamingTheSection) {
  const std::string good(kTpmSealdataBlob);
  const BadBlob cases[] = {
      {"empty", "", "BEGIN TSS"},
      {"not a blob", "api-key-in-plain-text\n", "BEGIN TSS"},
      {"no TSS KEY marker", Replace(good, "-----TSS KEY-----\n", ""), "TSS KEY"},
      {"no ENC KEY marker", Replace(good, "-----ENC KEY-----\n", ""), "TSS KEY section"},
      {"no cipher line", Replace(good, "Symmetric Key: AES-256-CBC\n", ""), "Symmetric Key"},
      {"other cipher", Replace(good, "AES-256-CBC", "AES-128-CBC"), "other than AES-256-CBC"},
      {"no ENC DAT marker", Replace(good, "-----ENC DAT-----\n", ""), "ENC KEY section"},
      {"no footer", Replace(good, "-----END TSS-----\n", ""), "ENC DAT"},
      {"bad base64 in TSS KEY", Replace(good, "AQEAAAARAAAA", "AQEAAAAR!AAA"),
       "TSS KEY section is not valid base64"},
      {"bad base64 in ENC KEY",
       Replace(good, "AQEAAAAAACwA",
               "AQEAAA\x01"
               "AACwA"),
       "ENC KEY section is not valid base64"},
      {"empty ENC DAT", Replace(good, "k9D/zR9PPJwIfifImkJGYQ==\n", ""),
       "ENC DAT section is empty"},
      {"ENC DAT not whole blocks",
       Replace(good, "k9D/zR9PPJwIfifImkJGYQ==", "k9D/zR9PPJwIfifImkJG"), "AES blocks"},
      {"garbage after footer", good + "more\n", "after"},
      {"sections swapped", Replace(good, "-----ENC KEY-----\n", "-----ENC DAT-----\n"),
       "unexpected marker"},
      {"NUL in base64", Replace(good, "k9D/", std::string("k9\0/", 4)),
       "ENC DAT section is not valid base64"},
  };
  for (const auto& c : cases) {
    SealedBlob b;
    b.tss_key = {1, 2, 3};  // must stay untouched on failure
    std::string err;
    EXPECT_EQ(ParseSealedBlob(c.text, &b, &err), -EBADMSG) << c.name;
    EXPECT_NE(err.find(c.expected), std::string::npos) << c.name << ": " << err;
    EXPECT_EQ(b.tss_key, (std::vector<unsigned char>{1, 2, 3})) << c.name;
  }
}

TEST(SealedBlobTest, RejectsOversizedInput) {
  std::string huge(kTpmSealdataBlob);
  huge.insert(huge.find("-----END TSS-----"), std::string(kMaxSealedBlobSize, 'A') + "\n");
  SealedBlob b;
  std::string err;
  EXPECT_EQ(ParseSealedBlob(huge, &b, &err), -EFBIG);
  EXPECT_NE(err.find("65536"), std::string::npos) << err;
  // A key section beyond any real key blob, inside the overall cap.
  std::string big_key = Replace(std::string(kTpmSealdataBlob), "-----TSS KEY-----\n",
                                "-----TSS KEY-----\n" + std::string(8000, 'A') + "\n");
  EXPECT_EQ(ParseSealedBlob(big_key, &b, &err), -EBADMSG);
  EXPECT_NE(err.find("TSS KEY section is too large"), std::string::npos) << err;
}

TEST(SealedBlobTest, EveryTruncationIsAnErrorNotACrash) {
  const std::string good(kTpmSealdataBlob);
  for (size_t n = 0; n < good.size(); ++n) {
    std::string_view cut(good.data(), n);
    SealedBlob b;
    std::string err;
    int rc = ParseSealedBlob(cut, &b, &err);
    // Cutting only the final "\n" still leaves a complete blob.
    if (n == good.size() - 1) {
      EXPECT_EQ(rc, 0) << err;
    } else {
      EXPECT_EQ(rc, -EBADMSG) << "cut at " << n;
      EXPECT_FALSE(err.empty());
    }
  }
}

TEST(SealedBlobTest, RandomCorruptionNeverCrashes) {
  std::mt19937 rng(42);
  const std::string good(kTpmSealdataBlob);
  for (int i = 0; i < 5000; ++i) {
    std::string s = good;
    int flips = 1 + rng() % 8;
    for (int f = 0; f < flips; ++f) {
      s[rng() % s.size()] = static_cast<char>(rng());
    }
    if (rng() % 4 == 0) s.resize(rng() % s.size());
    SealedBlob b;
    std::string err;
    int rc = ParseSealedBlob(s, &b, &err);
    EXPECT_TRUE(rc == 0 || rc == -EBADMSG) << rc;
    if (rc == 0) {
      EXPECT_EQ(b.enc_data.size() % 16, 0u);
      EXPECT_LE(b.tss_key.size(), 4096u);
    } else {
      EXPECT_FALSE(err.empty());
    }
  }
}

// ---- AES part, no TPM ----

TEST(SealedDataTest, MatchesOpenSslAes256CbcWithTpmToolsIv) {
  // printf 'my-api-key\n' | openssl enc -aes-256-cbc -K 0001..1f
  //   -iv $(printf 'IBM SEALIBM SEAL' | xxd -p)
  const std::vector<unsigned char> expected = {0xd6, 0x52, 0xc7, 0xf6, 0xae, 0x4c, 0x3c, 0x9c,
                                               0xc6, 0xca, 0x04, 0x40, 0x48, 0x07, 0x38, 0xfb};
  std::vector<unsigned char> cipher;
  std::string err;
  ASSERT_EQ(EncryptSealedData(KeyBytes(0), Secret::FromString("my-api-key\n"), &cipher, &err), 0)
      << err;
  EXPECT_EQ(cipher, expected);
  Secret plain;
  ASSERT_EQ(DecryptSealedData(KeyBytes(0), expected, &plain, &err), 0) << err;
  EXPECT_EQ(Str(plain), "my-api-key\n");
}

TEST(SealedDataTest, RoundTripsAndPadsEveryLength) {
  for (size_t n = 0; n <= 70; ++n) {
    Secret data(n);
    for (size_t i = 0; i < n; ++i) data.data()[i] = static_cast<unsigned char>(i * 7);
    std::vector<unsigned char> cipher;
    ASSERT_EQ(EncryptSealedData(KeyBytes(3), data, &cipher, nullptr), 0);
    EXPECT_EQ(cipher.size(), (n / 16 + 1) * 16) << n;  // PKCS#7 always pads
    Secret back;
    ASSERT_EQ(DecryptSealedData(KeyBytes(3), cipher, &back, nullptr), 0);
    EXPECT_TRUE(back.Equals(data)) << n;
  }
}

TEST(SealedDataTest, RejectsBadPaddingBadLengthsAndBadKeys) {
  std::vector<unsigned char> cipher;
  ASSERT_EQ(
      EncryptSealedData(KeyBytes(0), Secret::FromString("0123456789abcdefghij"), &cipher, nullptr),
      0);
  ASSERT_EQ(cipher.size(), 32u);
  // Flipping bit 7 of the first block's last byte turns the pad byte 12
  // into 0x8c: invalid, deterministically.
  auto bad = cipher;
  bad[15] ^= 0x80;
  Secret out = Secret::FromString("untouched");
  std::string err;
  EXPECT_EQ(DecryptSealedData(KeyBytes(0), bad, &out, &err), -EBADMSG);
  EXPECT_NE(err.find("ENC DAT"), std::string::npos) << err;
  EXPECT_EQ(Str(out), "untouched");
  EXPECT_EQ(DecryptSealedData(KeyBytes(0), std::span(cipher).first(31), &out, &err), -EBADMSG);
  EXPECT_EQ(DecryptSealedData(KeyBytes(0), {}, &out, &err), -EBADMSG);
  EXPECT_EQ(DecryptSealedData(Secret(16), cipher, &out, &err), -EINVAL);
  EXPECT_EQ(Str(out), "untouched");
}

// ---- UnsealApiKey, with a fake TPM ----

class FakeTpm : public Tpm {
 public:
  int rc = 0;
  std::string data;
  std::string error;
  std::string seen_blob;
  int Unseal(std::string_view blob_text, Secret* out, std::string* err) override {
    seen_blob = blob_text;
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
};

TEST(UnsealApiKeyTest, StripsExactlyOneTrailingNewline) {
  const std::pair<std::string, std::string> cases[] = {
      {"key\n", "key"}, {"key", "key"}, {"key\n\n", "key\n"}, {"k\r\n", "k\r"}, {"\nkey", "\nkey"},
  };
  for (const auto& [sealed, want] : cases) {
    FakeTpm tpm;
    tpm.data = sealed;
    Secret out;
    std::string err;
    ASSERT_EQ(UnsealApiKey(tpm, "BLOB", &out, &err), 0) << err;
    EXPECT_EQ(Str(out), want);
    EXPECT_EQ(tpm.seen_blob, "BLOB");
  }
}

TEST(UnsealApiKeyTest, RejectsEmptyKey) {
  for (const char* sealed : {"", "\n"}) {
    FakeTpm tpm;
    tpm.data = sealed;
    Secret out = Secret::FromString("untouched");
    std::string err;
    EXPECT_EQ(UnsealApiKey(tpm, "BLOB", &out, &err), -ENODATA);
    EXPECT_NE(err.find("empty API key"), std::string::npos) << err;
    EXPECT_NE(err.find("seal-api-key"), std::string::npos) << err;
    EXPECT_EQ(Str(out), "untouched");
  }
}

TEST(UnsealApiKeyTest, PassesErrorsThrough) {
  FakeTpm tpm;
  tpm.rc = -EKEYREJECTED;
  tpm.error = "PCRs changed";
  Secret out = Secret::FromString("untouched");
  std::string err;
  EXPECT_EQ(UnsealApiKey(tpm, "BLOB", &out, &err), -EKEYREJECTED);
  EXPECT_EQ(err, "PCRs changed");
  EXPECT_EQ(Str(out), "untouched");
}

// ---- Trousers without tcsd ----

// Sets an environment variable for the scope, restoring the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A loopback port nothing listens on (bound, then released).
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

TEST(TrousersTpmTest, TcsdDownSaysWhereAndWhatToDo) {
  int port = UnusedPort();
  ASSERT_GT(port, 0);
  ScopedEnv host("TSS_TCSD_HOSTNAME", "127.0.0.1");
  ScopedEnv p("TSS_TCSD_PORT", std::to_string(port));
  auto tpm = MakeTrousersTpm();
  Secret out = Secret::FromString("untouched");
  std::string err;
  EXPECT_EQ(tpm->Unseal(kTpmSealdataBlob, &out, &err), -ECONNREFUSED);
  const std::string where = "127.0.0.1:" + std::to_string(port);
  EXPECT_NE(err.find("cannot reach tcsd at " + where), std::string::npos) << err;
  EXPECT_NE(err.find("must be running"), std::string::npos) << err;
  EXPECT_EQ(Str(out), "untouched");

  std::string blob = "untouched";
  const unsigned pcrs[] = {4, 5};
  EXPECT_EQ(tpm->Seal(Secret::FromString("k"), pcrs, &blob, &err), -ECONNREFUSED);
  EXPECT_NE(err.find(where), std::string::npos) << err;
  EXPECT_EQ(blob, "untouched");
}

TEST(TrousersTpmTest, CorruptBlobIsRejectedBeforeTalkingToTcsd) {
  int port = UnusedPort();
  ScopedEnv p("TSS_TCSD_PORT", std::to_string(port));
  auto tpm = MakeTrousersTpm();
  Secret out;
  std::string err;
  EXPECT_EQ(tpm->Unseal("-----BEGIN TSS-----\n", &out, &err), -EBADMSG);
  EXPECT_NE(err.find("TSS KEY"), std::string::npos) << err;
}

TEST(TrousersTpmTest, RejectsPcrOutOfRange) {
  auto tpm = MakeTrousersTpm();
  const unsigned pcrs[] = {4, 24};
  std::string blob, err;
  EXPECT_EQ(tpm->Seal(Secret::FromString("k"), pcrs, &blob, &err), -EINVAL);
  EXPECT_NE(err.find("24"), std::string::npos) << err;
}

// ---- Against a real (software) TPM through tcsd ----
//
// Run with tests/tpm/tpm-env: eval "$(tests/tpm/tpm-env start)".

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

bool HaveCommand(const char* name) {
  std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

int RunShell(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Extends a PCR through libtspi, as firmware would on a changed boot.
void ExtendPcr(unsigned pcr) {
  TSS_HCONTEXT ctx;
  TSS_HTPM tpm;
  ASSERT_EQ(Tspi_Context_Create(&ctx), TSS_SUCCESS);
  ASSERT_EQ(Tspi_Context_Connect(ctx, nullptr), TSS_SUCCESS);
  ASSERT_EQ(Tspi_Context_GetTpmObject(ctx, &tpm), TSS_SUCCESS);
  BYTE digest[20] = {'h', 'p', 'c', 's', '-', 't', 'e', 's', 't'};
  UINT32 len = 0;
  BYTE* value = nullptr;
  EXPECT_EQ(Tspi_TPM_PcrExtend(tpm, pcr, sizeof digest, digest, nullptr, &len, &value),
            TSS_SUCCESS);
  Tspi_Context_FreeMemory(ctx, nullptr);
  Tspi_Context_Close(ctx);
}

class TpmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!getenv("TSS_TCSD_PORT")) {
      GTEST_SKIP() << "needs a TPM: TSS_TCSD_PORT is not set; start one with "
                      "eval \"$(tests/tpm/tpm-env start)\"";
    }
    TSS_HCONTEXT ctx;
    bool up = Tspi_Context_Create(&ctx) == TSS_SUCCESS &&
              Tspi_Context_Connect(ctx, nullptr) == TSS_SUCCESS;
    Tspi_Context_Close(ctx);
    if (!up) {
      GTEST_SKIP() << "needs a TPM: no tcsd reachable at TSS_TCSD_PORT=" << getenv("TSS_TCSD_PORT");
    }
    if (!HaveCommand("tpm_sealdata") || !HaveCommand("tpm_unsealdata")) {
      GTEST_SKIP() << "needs tpm-tools (tpm_sealdata, tpm_unsealdata)";
    }
    char tmpl[] = "/tmp/hpcs-tpm-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) RunShell("rm -rf '" + dir_ + "'");
  }

  // Seals `data` with tpm_sealdata to PCRs 4 and 5; returns the file text.
  std::string TpmSealdata(std::string_view data) {
    WriteFile(dir_ + "/in", data);
    EXPECT_EQ(RunShell("tpm_sealdata -z -p 4 -p 5 -i '" + dir_ + "/in' -o '" + dir_ +
                       "/blob' >/dev/null"),
              0);
    return ReadFile(dir_ + "/blob");
  }
  // Unseals a blob text with tpm_unsealdata; nullopt if it fails.
  std::optional<std::string> TpmUnsealdata(std::string_view blob) {
    WriteFile(dir_ + "/blob", blob);
    if (RunShell("tpm_unsealdata -z -i '" + dir_ + "/blob' -o '" + dir_ + "/out' 2>/dev/null") !=
        0) {
      return std::nullopt;
    }
    return ReadFile(dir_ + "/out");
  }

  std::string dir_;
};

// An IBM Cloud API key is 44 characters: with echo's newline 45 bytes, 48
// bytes encrypted.
constexpr std::string_view kApiKey = "0123456789abcdefghijABCDEFGHIJ-_0123456789xy";

TEST_F(TpmTest, UnsealsTpmSealdataBlobToTheKeyWithoutNewline) {
  std::string blob = TpmSealdata(std::string(kApiKey) + "\n");
  ASSERT_NE(blob.find("-----BEGIN TSS-----"), std::string::npos);
  auto tpm = MakeTrousersTpm();
  Secret key;
  std::string err;
  ASSERT_EQ(UnsealApiKey(*tpm, blob, &key, &err), 0) << err;
  EXPECT_EQ(Str(key), kApiKey);
  // Tpm::Unseal itself returns the data as sealed.
  Secret raw;
  ASSERT_EQ(tpm->Unseal(blob, &raw, &err), 0) << err;
  EXPECT_EQ(Str(raw), std::string(kApiKey) + "\n");
}

TEST_F(TpmTest, UnsealsTpmSealdataBlobsOfManyLengths) {
  auto tpm = MakeTrousersTpm();
  for (size_t n : {1, 15, 16, 17, 31, 32, 47, 48, 100, 300}) {
    std::string data(n, 'x');
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>('a' + i % 26);
    std::string blob = TpmSealdata(data);
    Secret out;
    std::string err;
    ASSERT_EQ(tpm->Unseal(blob, &out, &err), 0) << n << ": " << err;
    EXPECT_EQ(Str(out), data);
  }
}

TEST_F(TpmTest, OurSealUnsealsWithTpmUnsealdataAndWithUs) {
  auto tpm = MakeTrousersTpm();
  const unsigned pcrs[] = {4, 5};
  for (std::string data : {std::string(kApiKey), std::string(kApiKey) + "\n", std::string("short"),
                           std::string(100, 'z')}) {
    std::string blob, err;
    ASSERT_EQ(tpm->Seal(Secret::FromString(data), pcrs, &blob, &err), 0) << err;
    EXPECT_EQ(blob.find(data), std::string::npos);  // not in clear
    auto theirs = TpmUnsealdata(blob);
    ASSERT_TRUE(theirs.has_value()) << "tpm_unsealdata failed on:\n" << blob;
    EXPECT_EQ(*theirs, data);
    Secret ours;
    ASSERT_EQ(tpm->Unseal(blob, &ours, &err), 0) << err;
    EXPECT_EQ(Str(ours), data);
  }
}

TEST_F(TpmTest, SealsToHighPcrsAndToNoPcrs) {
  auto tpm = MakeTrousersTpm();
  const unsigned high[] = {7, 16, 23};  // PCRs > 15 need TPM_PCR_INFO_LONG
  std::string blob, err;
  ASSERT_EQ(tpm->Seal(Secret::FromString("high"), high, &blob, &err), 0) << err;
  EXPECT_EQ(TpmUnsealdata(blob), std::optional<std::string>("high"));
  ASSERT_EQ(tpm->Seal(Secret::FromString("none"), {}, &blob, &err), 0) << err;
  EXPECT_EQ(TpmUnsealdata(blob), std::optional<std::string>("none"));
  Secret out;
  ASSERT_EQ(tpm->Unseal(blob, &out, &err), 0) << err;
  EXPECT_EQ(Str(out), "none");
}

TEST_F(TpmTest, ExtendedPcrGivesThePcrMessage) {
  std::string theirs = TpmSealdata(std::string(kApiKey) + "\n");
  auto tpm = MakeTrousersTpm();
  const unsigned pcrs[] = {4, 5};
  std::string ours, err;
  ASSERT_EQ(tpm->Seal(Secret::FromString(kApiKey), pcrs, &ours, &err), 0) << err;

  ExtendPcr(5);

  for (const std::string& blob : {theirs, ours}) {
    Secret out = Secret::FromString("untouched");
    err.clear();
    EXPECT_EQ(UnsealApiKey(*tpm, blob, &out, &err), -EKEYREJECTED);
    EXPECT_NE(err.find("TPM_E_WRONGPCRVAL"), std::string::npos) << err;
    EXPECT_NE(err.find("changed since sealing"), std::string::npos) << err;
    EXPECT_NE(err.find("hpcs-for-luks seal-api-key"), std::string::npos) << err;
    EXPECT_EQ(err.find(kApiKey), std::string::npos);
    EXPECT_EQ(Str(out), "untouched");
  }
  EXPECT_FALSE(TpmUnsealdata(theirs).has_value());  // tpm-tools agrees
}

TEST_F(TpmTest, CorruptSectionsAreNamed) {
  std::string blob = TpmSealdata("0123456789abcdefghij\n");  // two AES blocks
  SealedBlob b;
  ASSERT_EQ(ParseSealedBlob(blob, &b, nullptr), 0);
  auto tpm = MakeTrousersTpm();

  struct Case {
    const char* name;
    SealedBlob blob;
    const char* expected;
  };
  std::vector<Case> cases;
  {
    SealedBlob c = b;  // inside the encrypted private part of the key
    c.tss_key[c.tss_key.size() - 40] ^= 0x01;
    cases.push_back({"key private part", c, "TSS KEY"});
  }
  {
    SealedBlob c = b;
    c.tss_key.resize(100);
    cases.push_back({"key truncated", c, "TSS KEY"});
  }
  {
    SealedBlob c = b;  // inside the RSA-encrypted part of TPM_STORED_DATA
    c.enc_key[c.enc_key.size() - 20] ^= 0x01;
    cases.push_back({"sealed key", c, "ENC KEY"});
  }
  {
    SealedBlob c = b;
    c.enc_key.resize(20);
    cases.push_back({"sealed key truncated", c, "ENC KEY"});
  }
  {
    SealedBlob c = b;
    c.enc_data[15] ^= 0x80;  // pad byte 12 -> 0x8c
    cases.push_back({"data", c, "ENC DAT"});
  }
  for (const auto& c : cases) {
    Secret out = Secret::FromString("untouched");
    std::string err;
    EXPECT_EQ(tpm->Unseal(FormatSealedBlob(c.blob), &out, &err), -EBADMSG) << c.name << ": " << err;
    EXPECT_NE(err.find(c.expected), std::string::npos) << c.name << ": " << err;
    EXPECT_EQ(Str(out), "untouched");
  }
}

}  // namespace
}  // namespace hpcs
