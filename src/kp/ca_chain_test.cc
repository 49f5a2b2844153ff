#include "kp/ca_chain.h"

#include <gtest/gtest.h>
#include <mbedtls/x509_crt.h>

#include <string>

#include "testing/test_doubles.h"

namespace hpcs {
namespace {

// Two self-signed EC P-256 test CAs, "hpcs test CA a" and "... b".
constexpr char kCaA[] = R"(-----BEGIN CERTIFICATE-----
MIIBhzCCAS2gAwIBAgIUW2Jpacl1/gxn9sQwj+x7b9xIkwwwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOaHBjcyB0ZXN0IENBIGEwHhcNMjYxMTI5MTAzNjE1WhcNMzYx
MTI2MTAzNjE1WjAZMRcwFQYDVQQDDA5ocGNzIHRlc3QgQ0EgYTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABFIvyHtmtld+biQ/I657RXxHnTyuFs5dYM+s4W3lWMvz
vFMahghM7dj9EiBxldBIDb/pM1nD6cqxgH0/RRBleXWjUzBRMB0GA1UdDgQWBBTi
9GLSSLnUuCQoMQpafTl/IrEUVDAfBgNVHSMEGDAWgBTi9GLSSLnUuCQoMQpafTl/
IrEUVDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCID1laMCuyQox
B2nRnQgiW+bsXd8IuB5MiMq+ehh5cyeQAiEA6ZM1ZUfwJ0i61iDiNvaL1hQmn3KF
rwdtQ8r2ePq3ffI=
-----END CERTIFICATE-----
)";

constexpr char kCaB[] = R"(-----BEGIN CERTIFICATE-----
MIIBhzCCAS2gAwIBAgIUTKQHiSc6yzCVwy5TmObkFjhy0UwwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOaHBjcyB0ZXN0IENBIGIwHhcNMjYxMTI5MTAzNjE1WhcNMzYx
MTI2MTAzNjE1WjAZMRcwFQYDVQQDDA5ocGNzIHRlc3QgQ0EgYjBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABDM4nOlUl40MrpOtuiltM5kzSt8/dtmtwQfVmiV0z1XC
WjdEgvWTKnFZD4n/tj6ou1n0kk/UdvpqVbNZArOlDZGjUzBRMB0GA1UdDgQWBBRM
+paGJbFAh1IvBqyqfT7/vhubKzAfBgNVHSMEGDAWgBRM+paGJbFAh1IvBqyqfT7/
vhubKzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDCm0R1/d1F
u1ZXwSoapxehb9Kbw3HzM0akX6hVmI9DfAIgJAQAapYlDDnGjZlt2zXMvnybzwXa
i/33B0n8EOlzo1g=
-----END CERTIFICATE-----
)";

std::string Subject(const mbedtls_x509_crt* c) {
  char buf[128];
  return mbedtls_x509_dn_gets(buf, sizeof buf, &c->subject) > 0 ? buf : "";
}

TEST(CaChainTest, ParsesEveryCertificateOfABundleOnce) {
  ScratchDir dir;
  std::string err;
  auto chain = CaChain::Load(dir.Write("bundle.pem", std::string(kCaA) + kCaB), &err);
  ASSERT_TRUE(chain) << err;
  EXPECT_EQ(chain->size(), 2u);
  EXPECT_EQ(Subject(chain->get()), "CN=hpcs test CA a");
  EXPECT_EQ(Subject(chain->get()->next), "CN=hpcs test CA b");
}

TEST(CaChainTest, SkipsACertificateItCannotParseAsLibcurlDoes) {
  ScratchDir dir;
  std::string broken(kCaB);
  broken[100] = broken[100] == 'A' ? 'B' : 'A';  // inside the base64 body
  broken.insert(120, "!");
  std::string err;
  auto chain = CaChain::Load(dir.Write("bundle.pem", std::string(kCaA) + broken), &err);
  ASSERT_TRUE(chain) << err;
  EXPECT_EQ(chain->size(), 1u);
  EXPECT_EQ(Subject(chain->get()), "CN=hpcs test CA a");
}

TEST(CaChainTest, AMissingOrEmptyBundleIsAnErrorNamingTheFile) {
  ScratchDir dir;
  std::string err;
  EXPECT_FALSE(CaChain::Load(dir.path() + "/absent.pem", &err));
  EXPECT_NE(err.find("'" + dir.path() + "/absent.pem'"), std::string::npos) << err;
  std::string text = dir.Write("notes.txt", "no certificate here\n");
  EXPECT_FALSE(CaChain::Load(text, &err));
  EXPECT_NE(err.find("'" + text + "'"), std::string::npos) << err;
}

}  // namespace
}  // namespace hpcs
