#include "tpm/tpm2_blob.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <random>
#include <string>
#include <vector>

#include "base/encoding.h"
#include "tpm/tpm.h"

namespace hpcs {
namespace {

// Written by `seal-api-key --tpm2 --pcr 7 --pcr 16` on swtpm (both PCRs
// zero). Used for format tests only; no TPM but that one can unseal it.
constexpr std::string_view kBlob =
    "-----BEGIN HPCS TPM2 SEALED DATA-----\n"
    "version: 1\n"
    "hierarchy: owner\n"
    "pcr-bank: sha256\n"
    "pcrs: 7 16\n"
    "pcr 7: 0000000000000000000000000000000000000000000000000000000000000000\n"
    "pcr 16: 0000000000000000000000000000000000000000000000000000000000000000\n"
    "primary-template: ABoAIwALAAMEcgAAAAYAgABDABAAAwAQAAAAAA==\n"
    "public: AE4ACAALAAAEEgAgKqINECZuJZegwMFK4dXbDqk7TCDXbGbQMuSRBBPLX6gAEAAg4RF/"
    "NPeRVcz8rPc2cxijSlSQn9nU5kYZAq+crleQ7dI=\n"
    "private: "
    "AI0AIBgjPUieYNBRG3XYvlLtObPKs7Sf8SStnu72WvI9dVSVABBDnQZuuOA+elg5cQRw7bwgSHO/"
    "I8Iyc5hZ9TbQtuSiRMtykENThuK47rVYlZsGbmUQ328R4x3jgtk6CKcREqj4N9gvXmHR1FhUocgNJ/"
    "OF68pFr3cv/t+fXNazeKvmw2YPc61pJORBgkw=\n"
    "-----END HPCS TPM2 SEALED DATA-----\n";

std::string Replace(std::string s, std::string_view from, std::string_view to) {
  size_t pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

PcrValue Value(uint8_t first, uint8_t step) {
  PcrValue v;
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(first + step * i);
  return v;
}

// Known answers computed by the TPM (swtpm), independently of our code:
//   tpm2_startauthsession -S s.ctx
//   tpm2_policypcr -S s.ctx -l sha256:0,23 -f vals.bin -L policy.bin
// with vals.bin = bytes 0..31 followed by 32 bytes 0xab, and
//   tpm2_policypcr -S s.ctx -l sha256:16 -f zero.bin   (32 zero bytes).
TEST(PcrPolicyTest, MatchesTheTpmsPolicyDigest) {
  std::vector<unsigned> pcrs = {0, 23};
  std::vector<PcrValue> values = {Value(0, 1), Value(0xab, 0)};
  EXPECT_EQ(HexEncode(PcrPolicyDigest(pcrs, values)),
            "38067505df7c4d3bff29f45450ffe9bd4d38ee2fadedc02b8c3cad612e66d9e9");
  std::vector<unsigned> one = {16};
  std::vector<PcrValue> zero = {PcrValue{}};
  EXPECT_EQ(HexEncode(PcrPolicyDigest(one, zero)),
            "bff2d58e9813f97cefc14f72ad8133bc7092d652b7c877959254af140c841f36");
  // The order of the list does not matter: the selection is a bitmap.
  std::vector<unsigned> reversed = {23, 0};
  std::vector<PcrValue> rvalues = {Value(0xab, 0), Value(0, 1)};
  EXPECT_EQ(PcrPolicyDigest(reversed, rvalues), PcrPolicyDigest(pcrs, values));
  // And every value counts.
  values[1][31] ^= 1;
  EXPECT_NE(HexEncode(PcrPolicyDigest(pcrs, values)),
            "38067505df7c4d3bff29f45450ffe9bd4d38ee2fadedc02b8c3cad612e66d9e9");
}

TEST(PcrPolicyTest, SelectionIsTheSha256BankBitmap) {
  std::vector<unsigned> pcrs = {0, 7, 8, 23};
  TPML_PCR_SELECTION s = PcrSelection(pcrs);
  ASSERT_EQ(s.count, 1u);
  EXPECT_EQ(s.pcrSelections[0].hash, TPM2_ALG_SHA256);
  EXPECT_EQ(s.pcrSelections[0].sizeofSelect, 3);
  EXPECT_EQ(s.pcrSelections[0].pcrSelect[0], 0x81);
  EXPECT_EQ(s.pcrSelections[0].pcrSelect[1], 0x01);
  EXPECT_EQ(s.pcrSelections[0].pcrSelect[2], 0x80);
}

TEST(Tpm2BlobTest, ParsesAndFormatsByteForByte) {
  Tpm2Blob b;
  std::string err;
  ASSERT_EQ(ParseTpm2Blob(kBlob, &b, &err), 0) << err;
  EXPECT_EQ(b.pcrs, (std::vector<unsigned>{7, 16}));
  ASSERT_EQ(b.pcr_values.size(), 2u);
  EXPECT_EQ(b.pcr_values[1], PcrValue{});
  EXPECT_EQ(b.primary_template.publicArea.type, TPM2_ALG_ECC);
  EXPECT_EQ(b.public_area.publicArea.type, TPM2_ALG_KEYEDHASH);
  EXPECT_GT(b.private_area.size, 0u);
  EXPECT_EQ(FormatTpm2Blob(b), kBlob);
}

TEST(Tpm2BlobTest, AcceptsCrlfAndTrailingBlankLines) {
  std::string crlf;
  for (char c : kBlob) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  crlf += "\r\n\n  \n";
  Tpm2Blob b;
  std::string err;
  EXPECT_EQ(ParseTpm2Blob(crlf, &b, &err), 0) << err;
  std::string s(kBlob);
  s.pop_back();
  EXPECT_EQ(ParseTpm2Blob(s, &b, &err), 0) << err;
}

TEST(Tpm2BlobTest, RejectsBadBlobsNamingThePart) {
  const std::string good(kBlob);
  const std::string zero64(64, '0');
  struct Case {
    const char* name;
    std::string text;
    const char* expected;
  };
  const Case cases[] = {
      {"empty", "", "does not start with"},
      {"TPM 1.2 blob", "-----BEGIN TSS-----\n", "does not start with"},
      {"no footer", Replace(good, "-----END HPCS TPM2 SEALED DATA-----\n", ""), "truncated"},
      {"not name: value", Replace(good, "hierarchy: owner", "hierarchy owner"), "line 3"},
      {"other version", Replace(good, "version: 1", "version: 2"), "version '2'"},
      {"no version", Replace(good, "version: 1\n", ""), "version part is missing"},
      {"other hierarchy", Replace(good, "hierarchy: owner", "hierarchy: endorsement"),
       "hierarchy part"},
      {"other bank", Replace(good, "pcr-bank: sha256", "pcr-bank: sha1"), "pcr-bank part"},
      {"pcrs not ascending", Replace(good, "pcrs: 7 16", "pcrs: 16 7"), "pcrs part"},
      {"pcr out of range", Replace(good, "pcrs: 7 16", "pcrs: 7 24"), "pcrs part"},
      {"no pcrs", Replace(good, "pcrs: 7 16", "pcrs:"), "pcrs part"},
      {"pcr value missing", Replace(good, "pcr 16: " + zero64 + "\n", ""),
       "'pcr 16' part is missing"},
      {"pcr value short", Replace(good, "pcr 7: " + zero64, "pcr 7: 00"),
       "'pcr 7' part is not 64 hex"},
      {"pcr value not hex", Replace(good, "pcr 7: 0000", "pcr 7: 00x0"),
       "'pcr 7' part is not 64 hex"},
      {"pcr value altered", Replace(good, "pcr 7: 0000", "pcr 7: 0001"),
       "public part's policy is not the PCR policy"},
      {"extra pcr line",
       Replace(good, "primary-template:", "pcr 9: " + zero64 + "\nprimary-template:"),
       "unknown part 'pcr 9'"},
      {"part twice", Replace(good, "version: 1\n", "version: 1\nversion: 1\n"),
       "'version' part appears twice"},
      {"unknown part", Replace(good, "version: 1\n", "version: 1\ncolour: blue\n"),
       "unknown part 'colour'"},
      {"template not base64", Replace(good, "ABoAIwAL", "ABoA!wAL"), "primary-template part"},
      {"template cut",
       Replace(good, "ABoAIwALAAMEcgAAAAYAgABDABAAAwAQAAAAAA==", "ABoAIwALAAMEcgAA"),
       "primary-template part"},
      {"template not a storage key", Replace(good, "ABoAIwALAAMEcgAA", "ABoAIwALAAMEYgAA"),
       "primary-template part is not a storage key"},
      {"public missing", Replace(good, "public: ", "publik: "), "public part is missing"},
      {"public cut", Replace(good, "7dI=\n", "\n"), "public part"},
      {"object opens without policy", Replace(good, "CAALAAAEEgAg", "CAALAAAEUgAg"),
       "opens without its PCR policy"},
      {"policy altered", Replace(good, "KqINECZu", "KqINECZv"),
       "public part's policy is not the PCR policy"},
      {"private missing", Replace(good, "private: ", "privat: "), "private part is missing"},
      {"private cut", Replace(good, "ORBgkw=\n", "\n"), "private part"},
      {"NUL in base64", Replace(good, "AI0AIBgj", std::string("AI0A\0Bgj", 8)), "private part"},
  };
  for (const auto& c : cases) {
    Tpm2Blob b;
    b.pcrs = {1, 2, 3};  // must stay untouched on failure
    std::string err;
    EXPECT_EQ(ParseTpm2Blob(c.text, &b, &err), -EBADMSG) << c.name;
    EXPECT_NE(err.find(c.expected), std::string::npos) << c.name << ": " << err;
    EXPECT_EQ(b.pcrs, (std::vector<unsigned>{1, 2, 3})) << c.name;
  }
}

// Since issue 22 a blob records the primary key's name (its name algorithm
// and the SHA-256 of its public area, as the TPM names it) after the
// template; a blob without it (kBlob) parses as before.
constexpr std::string_view kPrimaryName =
    "000b2d7e1a3f9c4b5e6d7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6";

TEST(Tpm2BlobTest, ThePrimaryNameIsOptionalAndKeptByteForByte) {
  const std::string with = Replace(
      std::string(kBlob), "public: ", "primary-name: " + std::string(kPrimaryName) + "\npublic: ");
  Tpm2Blob b;
  std::string err;
  ASSERT_EQ(ParseTpm2Blob(with, &b, &err), 0) << err;
  EXPECT_EQ(FormatTpm2Blob(b), with);
  ASSERT_EQ(ParseTpm2Blob(kBlob, &b, &err), 0) << err;
  EXPECT_EQ(FormatTpm2Blob(b), kBlob);  // none recorded: none written

  const std::string name(kPrimaryName);
  for (const std::string& bad : {name.substr(0, 20), "000bzz" + name.substr(6),
                                 "0004" + name.substr(4, 40), name + "00", std::string()}) {
    std::string text = Replace(with, name, bad);
    EXPECT_EQ(ParseTpm2Blob(text, &b, &err), -EBADMSG) << bad;
    EXPECT_NE(err.find("the primary-name part is not the name of a key of the primary template"),
              std::string::npos)
        << bad << ": " << err;
  }
}

TEST(Tpm2BlobTest, AnOlderBlobSaysWhatItLacks) {
  std::vector<std::string> lacks = BlobShortcomings(kBlob);
  ASSERT_EQ(lacks.size(), 1u);
  EXPECT_NE(lacks[0].find("sealed before the primary key's name was recorded"), std::string::npos)
      << lacks[0];
  const std::string with = Replace(
      std::string(kBlob), "public: ", "primary-name: " + std::string(kPrimaryName) + "\npublic: ");
  EXPECT_TRUE(BlobShortcomings(with).empty());
  EXPECT_TRUE(BlobShortcomings("-----BEGIN TSS-----\n").empty());
}

TEST(Tpm2BlobTest, RejectsOversizedInput) {
  std::string huge(kBlob);
  huge.insert(huge.find("private:"), "x: " + std::string(kMaxTpm2BlobSize, 'A') + "\n");
  Tpm2Blob b;
  std::string err;
  EXPECT_EQ(ParseTpm2Blob(huge, &b, &err), -EFBIG);
  EXPECT_NE(err.find("16384"), std::string::npos) << err;
}

TEST(Tpm2BlobTest, EveryTruncationIsAnErrorNotACrash) {
  const std::string good(kBlob);
  for (size_t n = 0; n + 1 < good.size(); ++n) {
    Tpm2Blob b;
    std::string err;
    EXPECT_EQ(ParseTpm2Blob(std::string_view(good.data(), n), &b, &err), -EBADMSG) << n;
    EXPECT_FALSE(err.empty());
  }
}

TEST(Tpm2BlobTest, RandomCorruptionNeverCrashesAndRarelyPasses) {
  std::mt19937 rng(42);
  const std::string good(kBlob);
  int passed = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string s = good;
    int flips = 1 + rng() % 8;
    for (int f = 0; f < flips; ++f) s[rng() % s.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) s.resize(rng() % s.size());
    Tpm2Blob b;
    std::string err;
    int rc = ParseTpm2Blob(s, &b, &err);
    EXPECT_TRUE(rc == 0 || rc == -EBADMSG) << rc;
    if (rc == 0) {
      ++passed;  // only flips the checks cannot see: the private part, the unique field
      EXPECT_EQ(b.pcrs, (std::vector<unsigned>{7, 16}));
    } else {
      EXPECT_FALSE(err.empty());
    }
  }
  EXPECT_LT(passed, 1000);
}

}  // namespace
}  // namespace hpcs
