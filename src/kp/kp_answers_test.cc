#include "kp/kp_answers.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace hpcs {
namespace {

constexpr std::string_view kPlainB64 = "UExBSU5URVhULXRoYXQtbXVzdC1ub3QtbGVhaw==";

KmsAnswer Ok(std::string_view body, std::string_view type = "application/json") {
  return {200, type, body};
}

TEST(KpAnswersTest, TheIamTokenAndItsLifetimeWithinBounds) {
  IamToken t;
  std::string err;
  ASSERT_EQ(ParseIamToken(Ok(R"({"access_token":"abc","expires_in":1800})"), &t, &err), 0);
  EXPECT_EQ(t.access_token.view(), "abc");
  EXPECT_EQ(t.lifetime, std::chrono::seconds(1800));
  ASSERT_EQ(ParseIamToken(Ok(R"({"access_token":"abc"})"), &t, &err), 0);
  EXPECT_EQ(t.lifetime, std::chrono::hours(1));
  for (auto [json, want] : std::initializer_list<std::pair<const char*, long>>{
           {R"({"access_token":"a","expires_in":1e300})", 86400},
           {R"({"access_token":"a","expires_in":1e999})", 86400},
           {R"({"access_token":"a","expires_in":-1e300})", 60},
           {R"({"access_token":"a","expires_in":0})", 60},
           {R"({"access_token":"a","expires_in":59.9})", 60},
           {R"({"access_token":"a","expires_in":90000})", 86400}}) {
    ASSERT_EQ(ParseIamToken(Ok(json), &t, &err), 0) << json;
    EXPECT_EQ(t.lifetime.count(), want) << json;
  }
}

TEST(KpAnswersTest, AnUnusableAnswerNamesLengthAndTypeNotItsBody) {
  std::string body = std::string(R"({"plaintext_":")") + std::string(kPlainB64) + R"("})";
  Secret pt;
  std::string err;
  EXPECT_EQ(ParseUnwrapped(Ok(body), &pt, &err), -EPROTO);
  EXPECT_EQ(err, "unwrap: unusable answer (HTTP 200, " + std::to_string(body.size()) +
                     " bytes of application/json): no plaintext");
  std::string echo = std::string(R"({"plaintext":")") + std::string(kPlainB64) + R"("})";
  std::string ct;
  EXPECT_EQ(ParseWrapped(Ok(echo, "text/plain"), &ct, &err), -EPROTO);
  EXPECT_EQ(err, "wrap: unusable answer (HTTP 200, " + std::to_string(echo.size()) +
                     " bytes of text/plain): no ciphertext");
  IamToken t;
  EXPECT_EQ(ParseIamToken(Ok(R"({"access_token_":"tok-secret"})", ""), &t, &err), -EPROTO);
  EXPECT_EQ(err, "unusable answer (HTTP 200, 30 bytes): no access_token");
  std::string id;
  EXPECT_EQ(ParseCreatedKey(Ok(echo), &id, &err), -EPROTO);
  EXPECT_NE(err.find("no resources[0].id"), std::string::npos);
  EXPECT_EQ(ParseKeyMetadata(Ok(std::string(kPlainB64)), &ct, &err), -EPROTO);
  EXPECT_NE(err.find("not JSON"), std::string::npos);
  std::vector<KeyInfo> keys;
  EXPECT_EQ(ParseKeyList(Ok("[\"" + std::string(kPlainB64) + "\"]"), &keys, &err), -EPROTO);
  EXPECT_NE(err.find("not a JSON object"), std::string::npos);
  EXPECT_EQ(ParseUnwrapped(Ok(R"({"plaintext":"not base64!"})"), &pt, &err), -EPROTO);
  EXPECT_NE(err.find("the plaintext is not base64"), std::string::npos);
  EXPECT_EQ(err.find("not base64!"), std::string::npos);
}

TEST(KpAnswersTest, KeyMaterialStaysOutEvenWhenAServerRepeatsIt) {
  // Found by the kp_answers fuzz target: a second "payload" member survived.
  std::string json, err;
  ASSERT_EQ(ParseKeyMetadata(
                Ok(R"({"resources":[{"id":"k","payload":"Zmlyc3Q=","payload":"c2Vjb25k"}]})"),
                &json, &err),
            0)
      << err;
  EXPECT_EQ(json.find("payload"), std::string::npos) << json;
  EXPECT_NE(json.find("\"k\""), std::string::npos) << json;
}

TEST(KpAnswersTest, WhatTheServiceAnswers) {
  std::vector<KeyInfo> keys;
  std::string err, s;
  ASSERT_EQ(ParseKeyList(Ok(R"({"resources":[{"id":"a","name":"n"},{"id":"b"}]})"), &keys, &err),
            0);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[1].id, "b");
  EXPECT_EQ(keys[1].name, "");
  ASSERT_EQ(ParseKeyList(Ok(R"({"metadata":{"collectionTotal":0}})"), &keys, &err), 0);
  EXPECT_TRUE(keys.empty());
  ASSERT_EQ(ParseCreatedKey(Ok(R"({"resources":[{"id":"k1"}]})"), &s, &err), 0);
  EXPECT_EQ(s, "k1");
  ASSERT_EQ(ParseKeyMetadata(Ok(R"({"resources":[{"id":"k1","payload":"c2VjcmV0"}]})"), &s, &err),
            0);
  EXPECT_NE(s.find("\"k1\""), std::string::npos);
  EXPECT_EQ(s.find("c2VjcmV0"), std::string::npos);  // material stays out
  ASSERT_EQ(ParseWrapped(Ok(R"({"ciphertext":"CT=="})"), &s, &err), 0);
  EXPECT_EQ(s, "CT==");
  Secret pt;
  ASSERT_EQ(ParseUnwrapped(Ok(R"({"plaintext":"AP8K"})"), &pt, &err), 0);
  EXPECT_EQ(pt.size(), 3u);
}

TEST(KpAnswersTest, KeyVersionOfWrapAndUnwrap) {
  std::string ct, kv = "stale", err;
  ASSERT_EQ(ParseWrapped(Ok(R"({"ciphertext":"CT==","keyVersion":{"id":"v-1"}})"), &ct, &err, &kv),
            0);
  EXPECT_EQ(kv, "v-1");
  Secret pt;
  ASSERT_EQ(ParseUnwrapped(Ok(R"({"plaintext":"AP8K","keyVersion":{"id":"v-2"},)"
                              R"("rewrappedKeyVersion":{"id":"v-3"}})"),
                           &pt, &err, &kv),
            0);
  EXPECT_EQ(kv, "v-2");  // the version it was wrapped with, not the newer one
  ASSERT_EQ(ParseUnwrapped(Ok(R"({"plaintext":"AP8K"})"), &pt, &err, &kv), 0);
  EXPECT_EQ(kv, "");
  ASSERT_EQ(ParseWrapped(Ok(R"({"ciphertext":"CT==","keyVersion":{"id":7}})"), &ct, &err, &kv), 0);
  EXPECT_EQ(kv, "");  // not a string: unknown
}

TEST(DescribeHttpErrorTest, KmsBody) {
  std::string body =
      R"({"metadata":{"collectionType":"application/vnd.ibm.kms.error+json","collectionTotal":1},)"
      R"("resources":[{"errorMsg":"Unprocessable Entity: The provided ciphertext is invalid or corrupted",)"
      R"("reasons":[{"code":"UNPROCESSABLE_CIPHERTEXT_ERR","message":"The provided ciphertext is invalid","status":422}]}]})";
  std::string m = DescribeHttpError(422, body);
  EXPECT_NE(m.find("HTTP 422 UNPROCESSABLE_CIPHERTEXT_ERR: Unprocessable Entity"),
            std::string::npos)
      << m;
}

TEST(DescribeHttpErrorTest, VpcBody) {
  EXPECT_EQ(DescribeHttpError(
                403, R"({"errors":[{"code":"not_authorized","message":"Not linked","more_info":)"
                     R"("https://x"}],"trace":"5c1d"})"),
            "HTTP 403 not_authorized: Not linked (trace 5c1d)");
}

TEST(DescribeHttpErrorTest, IamBodyNoReasonsAndHtml) {
  EXPECT_EQ(
      DescribeHttpError(
          400,
          R"({"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found."})"),
      "HTTP 400 BXNIM0415E: Provided API key could not be found.");
  EXPECT_EQ(DescribeHttpError(401, R"({"resources":[{"errorMsg":"Unauthorized: bad token"}]})"),
            "HTTP 401: Unauthorized: bad token");
  std::string m = DescribeHttpError(502, "<html>\n<body>Bad Gateway</body></html>");
  EXPECT_EQ(m, "HTTP 502: unexpected non-JSON body: <html> <body>Bad Gateway</body></html>");
  EXPECT_EQ(DescribeHttpError(500, ""), "HTTP 500");
  std::string longbody(500, 'x');
  EXPECT_LT(DescribeHttpError(500, longbody).size(), 150u);
}

}  // namespace
}  // namespace hpcs
