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

}  // namespace
}  // namespace hpcs
