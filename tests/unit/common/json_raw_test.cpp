#include "common/json_raw.h"

#include <gtest/gtest.h>

#include <string>

namespace conveyor {
namespace {

TEST(JsonRawTest, FindsMemberWithExactBytes) {
  std::string_view obj = R"({"a":1, "payload" : {"x":1.50,"s":"a\"}b"} ,"z":[1,2]})";
  EXPECT_EQ(FindJsonMember(obj, "payload"), R"({"x":1.50,"s":"a\"}b"})");
  EXPECT_EQ(FindJsonMember(obj, "z"), "[1,2]");
  EXPECT_EQ(FindJsonMember(obj, "a"), "1");
  EXPECT_TRUE(FindJsonMember(obj, "missing").empty());
}

TEST(JsonRawTest, IteratesArrayElements) {
  std::vector<std::string> out;
  ForEachJsonElement(R"([ {"a":[1,{"b":"]"}]}, null ,"x,y", -1.5e3 ])", [&](std::string_view e) {
    out.emplace_back(e);
    return true;
  });
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], R"({"a":[1,{"b":"]"}]})");
  EXPECT_EQ(out[1], "null");
  EXPECT_EQ(out[2], R"("x,y")");
  EXPECT_EQ(out[3], "-1.5e3");
}

TEST(JsonRawTest, DetectsDuplicateKeysAtAnyDepth) {
  EXPECT_TRUE(HasDuplicateJsonKeys(R"({"payload":1,"payload":2})"));
  EXPECT_TRUE(HasDuplicateJsonKeys(R"({"a":[{"x":1,"y":2,"x":3}]})"));
  EXPECT_FALSE(HasDuplicateJsonKeys(R"({"a":{"x":1},"b":{"x":1},"c":["x","x"]})"));
  EXPECT_FALSE(HasDuplicateJsonKeys(R"({"k":"\"k\"","x":"k"})"));
}

TEST(JsonRawTest, DeepNestingDoesNotRecurse) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  EXPECT_EQ(SkipJsonValue(deep, 0), deep.size());
  EXPECT_FALSE(HasDuplicateJsonKeys(deep));
}

}  // namespace
}  // namespace conveyor

namespace conveyor {
namespace {

TEST(JsonRawEscapedKeys, DuplicatesAreFoundAfterUnescaping) {
  EXPECT_TRUE(HasDuplicateJsonKeys(R"({"payload":1,"pr\u0069ority":5,"priority":1})"));
  EXPECT_TRUE(HasDuplicateJsonKeys(R"({"tasks":[],"t\u0061sks":[]})"));
  EXPECT_TRUE(HasDuplicateJsonKeys(R"({"a\/b":1,"a/b":2})"));
  EXPECT_FALSE(HasDuplicateJsonKeys(R"({"a\u00e9":1,"a\u00e8":2})"));
}

TEST(JsonRawEscapedKeys, FindMemberMatchesEscapedKeys) {
  EXPECT_EQ(FindJsonMember(R"({"p\u0061yload":7})", "payload"), "7");
  EXPECT_EQ(UnescapeJsonString(R"(\ud83d\ude00 \u00e9\n)"), "\xF0\x9F\x98\x80 \xC3\xA9\n");
}

}  // namespace
}  // namespace conveyor
