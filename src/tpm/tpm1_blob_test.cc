#include "tpm/tpm1_blob.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tpm/tpm1_test_blob.h"
#include "tpm/tpm_testing.h"

namespace hpcs {
namespace {

using testing::kTpmSealdataBlob;
using testing::Str;

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

}  // namespace
}  // namespace hpcs
