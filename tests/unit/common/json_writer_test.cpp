#include "common/json_writer.h"

#include <gtest/gtest.h>

namespace conveyor {
namespace {

TEST(JsonWriterTest, WritesNestedValuesWithCommas) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Field("a", int64_t{1}).Key("b").BeginArray().Bool(true).Null().EndArray();
  w.Key("raw").Raw(R"({"x":1.50})").Key("none").Raw("").Key("d").Double(0.1).EndObject();
  EXPECT_EQ(out, R"({"a":1,"b":[true,null],"raw":{"x":1.50},"none":null,"d":0.1})");
}

TEST(JsonWriterTest, EscapesControlCharactersAndInvalidUtf8) {
  std::string out;
  AppendJsonString(out, std::string("q\"\\\n\x01 \xc3\xa9 \xff", 10));
  EXPECT_EQ(out, "\"q\\\"\\\\\\n\\u0001 \xc3\xa9 \\ufffd\"");
}

}  // namespace
}  // namespace conveyor
