#include "api/task_spec_decoder.h"

#include <gtest/gtest.h>

#include "api/call_decoders.h"
#include "api/queue_config_decoder.h"

namespace conveyor {
namespace {

Error Decode(std::string_view body, EnqueueBody& out) {
  return DecodeEnqueueBody(body, Limits{}, out);
}

TEST(TaskSpecDecoderTest, KeepsThePayloadBytes) {
  EnqueueBody out;
  ASSERT_TRUE(Decode(R"({"payload": {"x":1.50, "y":[1e3]}, "priority": 7})", out).ok());
  ASSERT_EQ(out.specs.size(), 1u);
  EXPECT_FALSE(out.is_batch);
  EXPECT_EQ(out.specs[0].payload, R"({"x":1.50, "y":[1e3]})");
  EXPECT_EQ(out.specs[0].priority, 7);
}

TEST(TaskSpecDecoderTest, DecodesABatch) {
  EnqueueBody out;
  ASSERT_TRUE(Decode(R"({"tasks":[{"payload":null},{"payload":"s","delay_ms":5}]})", out).ok());
  ASSERT_EQ(out.specs.size(), 2u);
  EXPECT_TRUE(out.is_batch);
  EXPECT_EQ(out.specs[0].payload, "null");
  EXPECT_EQ(out.specs[1].payload, R"("s")");
  EXPECT_EQ(out.specs[1].delay_ms, 5);
}

TEST(TaskSpecDecoderTest, RefusesBadFieldsNamingThem) {
  struct Case {
    const char* body;
    ErrorCode code;
    const char* field;
  } cases[] = {
      {R"({"payload":1,"priority":"high"})", ErrorCode::kInvalidField, "priority"},
      {R"({"payload":1,"priority":2147483648})", ErrorCode::kInvalidField, "priority"},
      {R"({"payload":1,"delay_ms":{}})", ErrorCode::kInvalidField, "delay_ms"},
      {R"({"payload":1,"delay_ms":1e18})", ErrorCode::kInvalidField, "delay_ms"},
      {R"({"payload":1,"lease_ms":0})", ErrorCode::kInvalidField, "lease_ms"},
      {R"({"payload":1,"max_attempts":1.5})", ErrorCode::kInvalidField, "max_attempts"},
      {R"({"priority":1})", ErrorCode::kInvalidField, "payload"},
      {R"({"tasks":[]})", ErrorCode::kInvalidField, "tasks"},
      {R"({"tasks":[{"payload":1},{"payload":2,"priority":[]}]})", ErrorCode::kInvalidField,
       "tasks[1].priority"},
      {R"({"payload":1,"payload":2})", ErrorCode::kInvalidJson, ""},
      {R"({"payload":1,})", ErrorCode::kInvalidJson, ""},
      {R"({"payload":NaN})", ErrorCode::kInvalidJson, ""},
      {R"({"payload":1} x)", ErrorCode::kInvalidJson, ""},
      {R"({"payload":1 /* c */})", ErrorCode::kInvalidJson, ""},
      {"{\"payload\":\"\xff\"}", ErrorCode::kInvalidJson, ""},
  };
  for (const Case& c : cases) {
    EnqueueBody out;
    Error e = Decode(c.body, out);
    EXPECT_EQ(e.code, c.code) << c.body << " -> " << e.message;
    EXPECT_NE(e.message.find(c.field), std::string::npos) << e.message;
  }
}

TEST(TaskSpecDecoderTest, RefusesTooDeepAndTooLargeBatches) {
  std::string deep = R"({"payload":)" + std::string(10000, '[') + std::string(10000, ']') + "}";
  EnqueueBody out;
  EXPECT_EQ(Decode(deep, out).code, ErrorCode::kInvalidJson);
  std::string batch = R"({"tasks":[)";
  for (int i = 0; i < 1001; ++i) batch += std::string(i ? "," : "") + R"({"payload":1})";
  batch += "]}";
  EXPECT_EQ(Decode(batch, out).code, ErrorCode::kInvalidField);
}

TEST(CallDecodersTest, LeaseBoundsAndDefaults) {
  LeaseRequest req;
  ASSERT_TRUE(DecodeLeaseBody("", Limits{}, req).ok());
  EXPECT_EQ(req.max, 1u);
  EXPECT_EQ(DecodeLeaseBody(R"({"wait_ms":60001})", Limits{}, req).code, ErrorCode::kInvalidField);
  EXPECT_EQ(DecodeLeaseBody(R"({"max":0})", Limits{}, req).code, ErrorCode::kInvalidField);
}

TEST(CallDecodersTest, AckKeepsResultBytesAndNeedsToken) {
  AckCall ack;
  ASSERT_TRUE(DecodeAckBody(R"({"lease":"t","result":{"n":1.0}})", Limits{}, ack).ok());
  EXPECT_EQ(ack.result, R"({"n":1.0})");
  EXPECT_EQ(DecodeAckBody(R"({"result":1})", Limits{}, ack).code, ErrorCode::kInvalidField);
  std::vector<AckCall> acks;
  ASSERT_TRUE(
      DecodeBatchAckBody(R"({"acks":[{"id":5,"lease":"a"},{"id":6,"lease":"b","result":[1]}]})",
                         Limits{}, acks)
          .ok());
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[1].id, 6u);
  EXPECT_EQ(acks[1].result, "[1]");
}

TEST(QueueConfigDecoderTest, RefusesUnknownSettings) {
  QueueConfigPatch patch;
  EXPECT_TRUE(
      DecodeQueueConfigPatch(R"({"lease_ms":5000,"backoff":{"factor":1.5}})", Limits{}, patch)
          .ok());
  EXPECT_EQ(patch.lease_ms, 5000);
  EXPECT_EQ(patch.backoff_factor, 1.5);
  EXPECT_EQ(DecodeQueueConfigPatch(R"({"leas_ms":5000})", Limits{}, patch).code,
            ErrorCode::kInvalidField);
}

}  // namespace
}  // namespace conveyor
