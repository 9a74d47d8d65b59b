// libFuzzer target: every request-body decoder on arbitrary bytes. Besides "no crash, no
// sanitizer report", it checks that a payload the decoder accepted is itself valid JSON,
// which is what the raw-bytes payload path promises.
#include <boost/json/parse.hpp>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/call_decoders.h"
#include "api/queue_config_decoder.h"
#include "api/task_spec_decoder.h"

namespace {

void RequireJson(std::string_view text) {
  if (text.empty()) return;  // absent raw member
  boost::system::error_code ec;
  boost::json::parse(text, ec);
  if (ec) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace conveyor;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  Limits limits;
  EnqueueBody enqueue;
  if (DecodeEnqueueBody(body, limits, enqueue).ok()) {
    for (const TaskSpec& spec : enqueue.specs) RequireJson(spec.payload);
  }
  TaskSpec add;
  if (DecodeAddTaskBody(body, limits, add).ok()) RequireJson(add.payload);
  LeaseRequest lease;
  (void)DecodeLeaseBody(body, limits, lease);
  AckCall ack;
  if (DecodeAckBody(body, limits, ack).ok()) RequireJson(ack.result);
  NackCall nack;
  (void)DecodeNackBody(body, limits, nack);
  ExtendCall extend;
  if (DecodeExtendBody(body, limits, extend).ok()) RequireJson(extend.progress);
  std::vector<AckCall> acks;
  if (DecodeBatchAckBody(body, limits, acks).ok()) {
    for (const AckCall& a : acks) RequireJson(a.result);
  }
  QueueConfigPatch patch;
  (void)DecodeQueueConfigPatch(body, limits, patch);
  return 0;
}
