#include "kp/kp_keys.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace hpcs {
namespace {

KpCall Answered(std::string_view body) {
  KpCall c;
  c.status = 200;
  c.response = Secret::FromString(body);
  return c;
}

TEST(KpKeysTest, Metadata) {
  KpCall call = MakeKeyMetadataCall("a b");
  EXPECT_EQ(call.method, "GET");
  EXPECT_EQ(call.path, "/api/v2/keys/a%20b/metadata");
  KeyMetadata m;
  std::string err;
  ASSERT_EQ(ParseKeyMetadata(Answered(R"({"metadata":{},"resources":[{"id":"k1","name":"root",
      "state":2,"extractable":false,"deleted":false,"lastRotateDate":"2024-01-02T00:00:00Z",
      "keyVersion":{"id":"v2","creationDate":"2024-01-02T00:00:00Z"}}]})"),
                             &m, &err),
            0)
      << err;
  EXPECT_EQ(m.id, "k1");
  EXPECT_EQ(m.state, kKeySuspended);
  EXPECT_EQ(m.key_version, "v2");
  EXPECT_EQ(m.key_version_created, "2024-01-02T00:00:00Z");
  EXPECT_EQ(m.last_rotated, "2024-01-02T00:00:00Z");
  EXPECT_FALSE(m.extractable);
  EXPECT_EQ(KeyStateName(m.state), "suspended (disabled)");
  EXPECT_EQ(KeyStateName(4), "state 4");
  EXPECT_LT(ParseKeyMetadata(Answered(R"({"resources":[{"id":"k1"}]})"), &m, &err), 0);
  EXPECT_NE(err.find("key metadata: unusable answer"), std::string::npos) << err;
  // An answer we cannot use may hold a secret: it is described, never quoted.
  EXPECT_LT(ParseKeyMetadata(Answered(R"({"plaintext":"c2VjcmV0LWtleS1ieXRlcw=="})"), &m, &err), 0);
  EXPECT_EQ(err.find("c2VjcmV0"), std::string::npos) << err;
  RewrapResult rw;
  EXPECT_LT(ParseRewrap(Answered(R"({"plaintext":"c2VjcmV0LWtleS1ieXRlcw=="})"), &rw, &err), 0);
  EXPECT_EQ(err.find("c2VjcmV0"), std::string::npos) << err;
  EXPECT_NE(err.find("rewrap: unusable answer (HTTP 200"), std::string::npos) << err;
}

TEST(KpKeysTest, UnwrapDetailsAfterARotation) {
  UnwrapDetails d;
  std::string err;
  ASSERT_EQ(ParseUnwrapDetails(Answered(R"({"plaintext":"aGVsbG8=","keyVersion":{"id":"v1"},
      "ciphertext":"bmV3","rewrappedKeyVersion":{"id":"v2"}})"),
                               &d, &err),
            0)
      << err;
  EXPECT_EQ(d.plaintext.view(), "hello");
  EXPECT_EQ(d.key_version, "v1");
  EXPECT_EQ(d.rewrapped_ciphertext, "bmV3");
  EXPECT_EQ(d.rewrapped_key_version, "v2");
  ASSERT_EQ(ParseUnwrapDetails(Answered(R"({"plaintext":"aGVsbG8=","keyVersion":{"id":"v2"}})"), &d,
                               &err),
            0);
  EXPECT_TRUE(d.rewrapped_ciphertext.empty());
  KpCall failed;
  failed.result = -EPROTO;
  failed.error = "HTTP 409 KEY_ACTION_INVALID_STATE_ERR";
  EXPECT_EQ(ParseUnwrapDetails(failed, &d, &err), -EPROTO);
  EXPECT_EQ(err, "HTTP 409 KEY_ACTION_INVALID_STATE_ERR");
}

TEST(KpKeysTest, Rewrap) {
  KpCall call = MakeRewrapCall("crk", "Y3Q=\n");
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.path, "/api/v2/keys/crk/actions/rewrap");
  EXPECT_EQ(call.body.view(), R"({"ciphertext":"Y3Q="})");
  RewrapResult r;
  std::string err;
  ASSERT_EQ(ParseRewrap(Answered(R"({"ciphertext":"bmV3","keyVersion":{"id":"v1"},
      "rewrappedKeyVersion":{"id":"v2"}})"),
                        &r, &err),
            0);
  EXPECT_EQ(r.ciphertext, "bmV3");
  EXPECT_EQ(r.key_version, "v1");
  EXPECT_EQ(r.rewrapped_key_version, "v2");
  // A ciphertext that could not be a file's one line is refused.
  EXPECT_LT(ParseRewrap(Answered(R"({"ciphertext":"two\nlines"})"), &r, &err), 0);
  EXPECT_LT(ParseRewrap(Answered(R"({"ciphertext":""})"), &r, &err), 0);
  EXPECT_LT(ParseRewrap(Answered("<html>"), &r, &err), 0);
}

TEST(KpKeysTest, FailedForTokenAndPlausibleCiphertext) {
  KpCall c;
  c.result = -ETIMEDOUT;
  c.error = "cannot get an IAM token from https://iam: HTTP 400 BXNIM0415E";
  EXPECT_TRUE(FailedForToken(c));
  c.status = 404;
  EXPECT_FALSE(FailedForToken(c));
  c.status = 0;
  c.error = "cannot reach kms:443";
  EXPECT_FALSE(FailedForToken(c));
  EXPECT_TRUE(PlausibleCiphertext("eyJjaXBoZXJ0ZXh0Ijoi=="));
  EXPECT_FALSE(PlausibleCiphertext("a b"));
  EXPECT_FALSE(PlausibleCiphertext(std::string(70000, 'a')));
}

}  // namespace
}  // namespace hpcs
