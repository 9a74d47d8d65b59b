// The payload cache (--payload-cache-bytes): payloads of tasks made while the cache is full
// stay only in storage and are read back through the TaskReader for leases and views; the
// cache's count goes back down as tasks leave memory; without a reader every payload stays.
#include <gtest/gtest.h>

#include <map>

#include "engine/engine.h"

namespace conveyor {
namespace {

// Storage in a map: the journal keeps what TaskCreated gives, the reader hands it back.
class MapStorage final : public Journal, public TaskReader {
 public:
  void TaskCreated(const Task& task, std::string_view payload) override {
    payloads[task.id] = std::string(payload);
  }
  void TaskChanged(const Task&) override {}
  void TaskRemoved(uint64_t id, uint8_t) override { payloads.erase(id); }
  void QueueConfigChanged(std::string_view, const QueueConfig&) override {}
  void WhenDurable(Callback<void(Error)> done) override { done(Error{}); }

  Result ReadTask(uint64_t, StoredTask&) override { return Result::kNotFound; }
  Result ReadPayload(uint64_t id, std::string& out) override {
    ++reads;
    if (failing) return Result::kError;
    auto it = payloads.find(id);
    if (it == payloads.end()) return Result::kNotFound;
    out = it->second;
    return Result::kFound;
  }

  std::map<uint64_t, std::string> payloads;
  int reads = 0;
  bool failing = false;
};

class PayloadCacheTest : public ::testing::Test {
 protected:
  static Limits WithCache(size_t bytes) {
    Limits l;
    l.payload_cache_bytes = bytes;
    return l;
  }
  void Start(size_t cache_bytes, bool with_reader = true) {
    limits_ = WithCache(cache_bytes);
    shared_ = std::make_unique<ServerWide>(limits_);
    engine_ = std::make_unique<Engine>(clock_, storage_, *shared_, limits_, 7);
    if (with_reader) engine_->SetReader(&storage_);
  }
  uint64_t Add(std::string payload) {
    std::vector<TaskSpec> specs(1);
    specs[0].payload = std::move(payload);
    auto r = engine_->Enqueue("q", std::move(specs));
    EXPECT_TRUE(r.error.ok()) << r.error.message;
    return r.tasks.at(0).id;
  }
  LeaseResult Lease(uint32_t max) {
    LeaseRequest req;
    req.max = max;
    LeaseResult out;
    engine_->Lease("q", req, [&](LeaseResult r) { out = std::move(r); });
    return out;
  }
  size_t Held() const { return shared_->payload_bytes.load(); }

  ManualClock clock_{1'700'000'000'000};
  MapStorage storage_;
  Limits limits_;
  std::unique_ptr<ServerWide> shared_;
  std::unique_ptr<Engine> engine_;
};

std::string Payload(int i) {
  std::string s(1, '"');
  s.append(std::to_string(i)).append(97, 'p').push_back('"');
  return s;
}

TEST_F(PayloadCacheTest, PayloadsPastTheCacheAreReadBackForLeasesAndViews) {
  Start(/*cache_bytes=*/250);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(Add(Payload(i)));
  const size_t one = Payload(0).size();
  EXPECT_EQ(Held(), 2 * one);  // the first two fit in 250 bytes, the others do not
  EXPECT_EQ(storage_.reads, 0);
  auto view = engine_->GetTask(ids[5]);
  ASSERT_TRUE(view.error.ok());
  EXPECT_EQ(view.value.payload, Payload(5));
  EXPECT_EQ(storage_.reads, 1);
  auto page = engine_->ListTasks("q", std::nullopt, 100, 0);
  ASSERT_TRUE(page.error.ok());
  ASSERT_EQ(page.value.tasks.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(page.value.tasks[i].payload, Payload(i)) << i;
  EXPECT_EQ(storage_.reads, 1 + 4);  // only the four not in memory

  LeaseResult leased = Lease(6);
  ASSERT_TRUE(leased.error.ok());
  ASSERT_EQ(leased.tasks.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(leased.tasks[i].payload, Payload(i)) << i;
  // Acked and durable: the tasks leave memory, and so do the cached payloads' bytes.
  for (const TaskView& t : leased.tasks) {
    ASSERT_TRUE(engine_->Ack(t.id, t.lease_token, "").error.ok());
  }
  engine_->AfterCommand();
  EXPECT_EQ(Held(), 0u);
  EXPECT_EQ(engine_->task_count(), 0u);
  // Room again: the next payload is kept in memory.
  Add(Payload(7));
  EXPECT_EQ(Held(), one);
}

TEST_F(PayloadCacheTest, AnUnreadablePayloadLeavesTheTaskReadyAndUncounted) {
  Start(/*cache_bytes=*/0);
  const uint64_t id = Add(Payload(1));
  EXPECT_EQ(Held(), 0u);
  storage_.failing = true;
  LeaseResult leased = Lease(1);
  EXPECT_EQ(leased.error.code, ErrorCode::kStorageUnavailable);
  EXPECT_TRUE(leased.tasks.empty());
  EXPECT_TRUE(leased.granted.empty());
  EXPECT_EQ(engine_->GetTask(id).error.code, ErrorCode::kStorageUnavailable);
  storage_.failing = false;
  auto view = engine_->GetTask(id);
  ASSERT_TRUE(view.error.ok());
  EXPECT_EQ(view.value.state, TaskState::kReady);
  EXPECT_EQ(view.value.attempts, 0u);  // the failed lease did not count
  leased = Lease(1);
  ASSERT_EQ(leased.tasks.size(), 1u);
  EXPECT_EQ(leased.tasks[0].payload, Payload(1));
  EXPECT_EQ(leased.tasks[0].attempts, 1u);
}

TEST_F(PayloadCacheTest, WithoutAReaderEveryPayloadStaysInMemory) {
  Start(/*cache_bytes=*/0, /*with_reader=*/false);
  for (int i = 0; i < 3; ++i) Add(Payload(i));
  EXPECT_EQ(Held(), 3 * Payload(0).size());
  LeaseResult leased = Lease(3);
  ASSERT_EQ(leased.tasks.size(), 3u);
  EXPECT_EQ(leased.tasks[2].payload, Payload(2));
  EXPECT_EQ(storage_.reads, 0);
}

TEST_F(PayloadCacheTest, AQueuedTaskIsSmall) {
  // The hot part of a task: what a queued task costs besides its payload and indexes.
  EXPECT_LE(sizeof(Task), 88u);
}

}  // namespace
}  // namespace conveyor
