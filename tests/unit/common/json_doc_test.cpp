// Unit tests for JsonDoc: what it accepts and refuses (strict RFC 8259, UTF-8, surrogates,
// depth, repeated keys, also past the linear key check), the numbers it reads, and the raw
// bytes and lookups the decoders use.
#include "common/json_doc.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace conveyor {
namespace {

bool Accepts(std::string_view text, size_t depth = 32) {
  JsonDoc doc;
  return doc.Parse(text, depth);
}

TEST(JsonDoc, AcceptsStrictJson) {
  for (const char* text :
       {"{}", "[]", " {\"a\" : [1, -0, 2.5e3, true, false, null, \"x\"]} ", "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\"\x7f\"", "0", "1E+2",
        "-0.0e-0", "{\"a\":{\"a\":1}}"}) {
    EXPECT_TRUE(Accepts(text)) << text;
  }
}

TEST(JsonDoc, RefusesWhatIsNotStrictJson) {
  for (const char* text : {"",
                           " ",
                           "{",
                           "[1,]",
                           "{\"a\":1,}",
                           "01",
                           "1.",
                           ".5",
                           "1e",
                           "+1",
                           "-",
                           "tru",
                           "nul",
                           "{'a':1}",
                           "{a:1}",
                           "[1] 2",
                           "\"\\x\"",
                           "\"\\u12g4\"",
                           "\"\\ud800\"",
                           "\"\\udc00\"",
                           "\"\\ud800\\u0041\"",
                           "\"\xed\xa0\x80\"",
                           "\"\xc0\xaf\"",
                           "\"\xf4\x90\x80\x80\"",
                           "\"\xc3\"",
                           "\"a\nb\"",
                           "\"abc",
                           "{\"a\" 1}",
                           "NaN",
                           "[1 2]",
                           "1e1000000000"}) {
    EXPECT_FALSE(Accepts(text)) << text;
  }
}

TEST(JsonDoc, DepthIsCountedInContainers) {
  EXPECT_TRUE(Accepts("[[[1]]]", 3));
  EXPECT_FALSE(Accepts("[[[[1]]]]", 3));
  EXPECT_TRUE(Accepts("{\"a\":{\"b\":[]}}", 3));
  EXPECT_FALSE(Accepts("{\"a\":{\"b\":[{}]}}", 3));
}

TEST(JsonDoc, RefusesARepeatedKeyAnywhere) {
  EXPECT_FALSE(Accepts("{\"a\":1,\"a\":2}"));
  EXPECT_FALSE(Accepts("{\"p\\u0061yload\":1,\"payload\":2}"));
  EXPECT_FALSE(Accepts("{\"x\":[{\"deep\":{\"k\":1,\"k\":1}}]}"));
  EXPECT_TRUE(Accepts("{\"a\":{\"a\":1},\"b\":{\"a\":2}}"));
  // Past the linear check (16 keys) repeats are found by sorting at the object's end.
  std::string many = "{";
  for (int i = 0; i < 100; ++i) many += "\"k" + std::to_string(i) + "\":0,";
  EXPECT_TRUE(Accepts(many + "\"last\":0}"));
  EXPECT_FALSE(Accepts(many + "\"k7\":0}"));
}

TEST(JsonDoc, ReadsNumbersAsTheyAreSpelled) {
  JsonDoc doc;
  ASSERT_TRUE(
      doc.Parse("{\"i\":-9223372036854775808,\"u\":18446744073709551615,\"d\":18446744073709551616,"
                "\"f\":1.5,\"inf\":1e400,\"z\":-0}",
                8));
  JsonValue root = doc.root();
  EXPECT_EQ(root.Find("i").type(), JsonType::kInt);
  EXPECT_EQ(root.Find("i").int64(), INT64_MIN);
  EXPECT_EQ(root.Find("u").type(), JsonType::kUint);
  EXPECT_EQ(root.Find("u").uint64(), UINT64_MAX);
  EXPECT_EQ(root.Find("d").type(), JsonType::kDouble);
  EXPECT_DOUBLE_EQ(root.Find("f").to_double(), 1.5);
  EXPECT_TRUE(std::isinf(root.Find("inf").to_double()));
  EXPECT_EQ(root.Find("z").type(), JsonType::kInt);
  EXPECT_EQ(root.Find("z").int64(), 0);
}

TEST(JsonDoc, KeepsTheClientsBytesAndFindsMembers) {
  JsonDoc doc;
  const std::string text =
      "{ \"payload\" : {\"n\": 1.50, \"s\":\"\\u00e9\"} , \"pr\\u0069ority\":3,"
      "\"tasks\":[{\"payload\":[1, 2]},{\"payload\":null}]}";
  ASSERT_TRUE(doc.Parse(text, 8));
  JsonValue root = doc.root();
  EXPECT_EQ(root.size(), 3u);
  EXPECT_EQ(root.Find("payload").raw(), "{\"n\": 1.50, \"s\":\"\\u00e9\"}");
  EXPECT_EQ(root.Find("priority").int64(), 3);
  EXPECT_EQ(root.Find("priority").key(), "priority");
  EXPECT_FALSE(root.Find("missing"));
  JsonValue tasks = root.Find("tasks");
  ASSERT_TRUE(tasks.is_array());
  EXPECT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks.first().Find("payload").raw(), "[1, 2]");
  EXPECT_TRUE(tasks.first().next().Find("payload").is_null());
  EXPECT_FALSE(tasks.first().next().next());
  EXPECT_EQ(JsonValue(doc.root().Find("payload")).Find("s").string(), "\xc3\xa9");
}

TEST(JsonDoc, DeepValuesAreCheckedButNotRecorded) {
  JsonDoc doc;
  ASSERT_TRUE(doc.Parse("{\"a\":{\"b\":{\"c\":{\"d\":1}}}}", 8));
  JsonValue c = doc.root().Find("a").Find("b").Find("c");
  ASSERT_TRUE(c.is_object());
  EXPECT_EQ(c.raw(), "{\"d\":1}");
  EXPECT_EQ(c.size(), 1u);
  EXPECT_FALSE(c.Find("d"));  // past kRecordedDepth: raw bytes only
  EXPECT_FALSE(doc.Parse("{\"a\":{\"b\":{\"c\":{\"d\":1,\"d\":2}}}}", 8));
}

TEST(JsonDoc, ErrorsSayWhatAndWhere) {
  JsonDoc doc;
  EXPECT_FALSE(doc.Parse("{\"a\":1,\"a\":2}", 8));
  EXPECT_NE(doc.error().find("repeats a key"), std::string::npos) << doc.error();
  EXPECT_FALSE(doc.Parse("[1,,2]", 8));
  EXPECT_NE(doc.error().find("at byte 3"), std::string::npos) << doc.error();
}

}  // namespace
}  // namespace conveyor
