#include "base/json.h"

#include <gtest/gtest.h>

namespace hpcs {
namespace {

TEST(JsonTest, ParseAndLookups) {
  Json j = JsonParse(R"({"a":"x","n":3,"o":{},"l":[1]})");
  ASSERT_TRUE(j);
  EXPECT_EQ(JsonString(j.get(), "a").value_or(""), "x");
  EXPECT_FALSE(JsonString(j.get(), "n"));
  EXPECT_EQ(JsonNumber(j.get(), "n").value_or(0), 3);
  EXPECT_TRUE(JsonObject(j.get(), "o"));
  EXPECT_FALSE(JsonObject(j.get(), "l"));
  EXPECT_TRUE(JsonArray(j.get(), "l"));
  EXPECT_FALSE(JsonParse("<html>"));
  EXPECT_FALSE(JsonParse(std::string_view("{\"a\":1", 6)));
}

TEST(JsonTest, PrintIsCompact) {
  Json j(cJSON_CreateObject());
  cJSON_AddStringToObject(j.get(), "plaintext", "AAAA");
  EXPECT_EQ(JsonPrint(j.get()).view(), R"({"plaintext":"AAAA"})");
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
