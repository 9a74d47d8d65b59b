// The durability contract of StorageJournal, checked against a file system that loses
// every byte not covered by a completed fsync (TESTPLAN A.4) and one that fails writes.
#include "storage/storage_journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "drop_unsynced_file_system.h"
#include "engine/engine.h"

namespace conveyor {
namespace {

namespace fs = std::filesystem;

std::string TempDir(const char* name) {
  std::string dir = fs::temp_directory_path() /
                    (std::string("conveyor-") + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::set<uint64_t> StoredIds(const std::string& path) {
  std::string error;
  auto store = RocksStore::Open(StoreOptions{path, "", nullptr}, error);
  EXPECT_TRUE(store) << error;
  std::set<uint64_t> ids;
  if (!store) return ids;
  Error e = store->LoadTasks({}, [&](StoredTask&& t, std::string_view) { ids.insert(t.task.id); });
  EXPECT_TRUE(e.ok()) << e.message;
  return ids;
}

struct Harness {
  explicit Harness(const std::string& path, std::shared_ptr<rocksdb::FileSystem> fs,
                   std::string fault_file = "", bool sync = true) {
    std::string error;
    store = RocksStore::Open(StoreOptions{path, std::move(fault_file), std::move(fs)}, error);
    EXPECT_TRUE(store) << error;
    journal = std::make_unique<StorageJournal>(*store, sync, 0);
    journal->Bind(io, [this] {
      ++reloads;
      return Error{};
    });
    engine = std::make_unique<Engine>(clock, *journal, shared, Limits{}, 1);
  }
  ~Harness() { journal->Stop(); }

  // Enqueues one task; `done` is called once it is durable (or not).
  uint64_t Enqueue(int n, std::function<void(uint64_t, Error)> done) {
    std::vector<TaskSpec> specs(1);
    specs[0].payload = std::to_string(n);
    auto result = engine->Enqueue("q", std::move(specs));
    if (!result.error.ok()) {
      done(0, result.error);
      return 0;
    }
    uint64_t id = result.tasks[0].id;
    journal->WhenDurable([id, done](Error e) { done(id, e); });
    return id;
  }

  // Bounded: a test that waits for something that never happens fails instead of hanging.
  void RunUntil(const std::function<bool()>& condition) {
    auto guard = boost::asio::make_work_guard(io);
    io.restart();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!condition()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out";
      io.run_one_for(std::chrono::milliseconds(100));
    }
  }

  ManualClock clock;
  ServerWide shared{Limits{}};
  boost::asio::io_context io;
  std::unique_ptr<RocksStore> store;
  std::unique_ptr<StorageJournal> journal;
  std::unique_ptr<Engine> engine;
  int reloads = 0;
};

TEST(StorageJournalTest, AcknowledgedChangesSurviveLosingUnsyncedBytes) {
  const std::string dir = TempDir("drop-unsynced");
  auto fs = std::make_shared<testing::DropUnsyncedFileSystem>();
  Harness h(dir + "/db", fs);
  std::set<uint64_t> acknowledged;
  int answered = 0;
  for (int i = 0; i < 300; ++i) {
    h.Enqueue(i, [&](uint64_t id, Error e) {
      ++answered;
      if (e.ok()) acknowledged.insert(id);
    });
    if (i % 7 == 0) {  // let some group commits finish while others fill
      h.io.restart();
      h.io.poll();
    }
  }
  h.RunUntil([&] { return answered >= 150; });
  // The "power loss": what the disk holds now, without anything not yet fsync'd.
  std::set<uint64_t> acked_at_crash = acknowledged;
  fs->CopySyncedState(dir + "/db", dir + "/crashed");
  std::set<uint64_t> survived = StoredIds(dir + "/crashed");
  for (uint64_t id : acked_at_crash) EXPECT_TRUE(survived.contains(id)) << id;
  EXPECT_GE(acked_at_crash.size(), 150u);
  h.RunUntil([&] { return answered == 300; });
  EXPECT_EQ(acknowledged.size(), 300u);
  fs::remove_all(dir);
}

TEST(StorageJournalTest, FailedWritesAreNeverAcknowledgedAndTheShardRecovers) {
  const std::string dir = TempDir("faulty");
  const std::string flag = dir + "/fail";
  Harness h(dir + "/db", nullptr, flag);
  std::vector<Error> results;
  h.Enqueue(1, [&](uint64_t, Error e) { results.push_back(e); });
  h.RunUntil([&] { return results.size() == 1; });
  ASSERT_TRUE(results[0].ok());

  std::ofstream(flag) << "eio";
  h.Enqueue(2, [&](uint64_t, Error e) { results.push_back(e); });
  h.RunUntil([&] { return results.size() == 2; });
  EXPECT_EQ(results[1].code, ErrorCode::kStorageUnavailable);
  EXPECT_FALSE(h.journal->writable());
  EXPECT_GE(h.reloads, 1);
  // While failing, changes are refused up front.
  h.Enqueue(3, [&](uint64_t, Error e) { results.push_back(e); });
  EXPECT_EQ(results.back().code, ErrorCode::kStorageUnavailable);

  fs::remove(flag);
  h.RunUntil([&] { return h.journal->writable(); });
  h.Enqueue(4, [&](uint64_t, Error e) { results.push_back(e); });
  h.RunUntil([&] { return results.size() == 4; });
  EXPECT_TRUE(results[3].ok()) << results[3].message;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace conveyor

namespace conveyor {
namespace {

// Item 4 of Foundation II: lease, extend and ack write small deltas, and what they wrote
// is what recovery reads back.
TEST(StorageJournalDeltaTest, LeaseExtendAndAckWriteSmallRecordsThatRecover) {
  const std::string dir = TempDir("deltas");
  uint64_t id = 0;
  std::string token;
  {
    Harness h(dir + "/db", nullptr);
    std::vector<TaskSpec> specs(1);
    specs[0].payload = "\"" + std::string(1 << 20, 'p') + "\"";
    specs[0].max_attempts = 100;
    bool durable = false;
    auto result = h.engine->Enqueue("q", std::move(specs));
    ASSERT_TRUE(result.error.ok());
    id = result.tasks[0].id;
    h.journal->WhenDurable([&](Error e) { durable = e.ok(); });
    h.RunUntil([&] { return durable; });
    // 49 nacks leave 49 errors of 4 KiB on the task (its record is ~200 KiB now).
    for (int i = 0; i < 49; ++i) {
      LeaseRequest req;
      LeaseResult got;
      h.engine->Lease("q", req, [&](LeaseResult r) { got = std::move(r); });
      ASSERT_EQ(got.granted.size(), 1u) << i;
      ASSERT_TRUE(
          h.engine->Nack(id, got.granted[0].token, std::string(4096, 'e'), 0, false).error.ok());
      durable = false;
      h.journal->WhenDurable([&](Error e) { durable = e.ok(); });
      h.RunUntil([&] { return durable; });
    }
    LeaseRequest req;
    LeaseResult got;
    h.engine->Lease("q", req, [&](LeaseResult r) { got = std::move(r); });
    ASSERT_EQ(got.granted.size(), 1u);
    token = got.granted[0].token;
    EXPECT_LT(h.journal->pending_bytes(), 200u) << "a lease rewrote the task";
    durable = false;
    h.journal->WhenDurable([&](Error e) { durable = e.ok(); });
    h.RunUntil([&] { return durable; });
    ASSERT_TRUE(h.engine->Extend(id, token, 60000, "").error.ok());
    EXPECT_LT(h.journal->pending_bytes(), 200u) << "an extend rewrote the task";
    ASSERT_TRUE(h.engine->Extend(id, token, 60000, R"({"pct":50})").error.ok());
    EXPECT_LT(h.journal->pending_bytes(), 400u);
    durable = false;
    h.journal->WhenDurable([&](Error e) { durable = e.ok(); });
    h.RunUntil([&] { return durable; });
  }
  // Reopen: the lease (token, expiry, attempts) and the progress come back with the record.
  auto store = [&] {
    std::string error;
    auto s = RocksStore::Open(StoreOptions{dir + "/db", "", nullptr}, error);
    EXPECT_TRUE(s) << error;
    return s;
  }();
  ASSERT_TRUE(store);
  std::vector<StoredTask> loaded;
  ASSERT_TRUE(store
                  ->LoadTasks({},
                              [&](StoredTask&& t, std::string_view payload) {
                                t.payload = std::string(payload);
                                loaded.push_back(std::move(t));
                              })
                  .ok());
  ASSERT_EQ(loaded.size(), 1u);
  const Task& t = loaded[0].task;
  EXPECT_EQ(t.state, TaskState::kLeased);
  EXPECT_EQ(t.attempts, 50u);
  EXPECT_EQ(t.lease_token(), token);
  EXPECT_EQ(t.progress(), R"({"pct":50})");
  EXPECT_EQ(t.errors().size(), 49u);
  EXPECT_EQ(loaded[0].payload.size(), (1u << 20) + 2);
  fs::remove_all(dir);
}

// TESTPLAN A.4 in batch mode: what was acknowledged more than one sync interval (100 ms,
// plus scheduling slack) before the "power loss" survives it.
TEST(StorageJournalBatchTest, BatchModeLosesAtMostTheLastSyncInterval) {
  using Clock = std::chrono::steady_clock;
  const std::string dir = TempDir("batch-window");
  auto fs = std::make_shared<testing::DropUnsyncedFileSystem>();
  Harness h(dir + "/db", fs, "", /*sync=*/false);
  BatchSyncer syncer(*h.store, std::chrono::milliseconds(100), nullptr);
  std::vector<std::pair<uint64_t, Clock::time_point>> acked;
  const auto start = Clock::now();
  for (int i = 0; Clock::now() - start < std::chrono::milliseconds(700); ++i) {
    h.Enqueue(i, [&](uint64_t id, Error e) {
      if (e.ok()) acked.emplace_back(id, Clock::now());
    });
    h.io.restart();
    h.io.poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const auto crash = Clock::now();
  fs->CopySyncedState(dir + "/db", dir + "/crashed");
  std::set<uint64_t> survived = StoredIds(dir + "/crashed");
  size_t checked = 0;
  for (const auto& [id, at] : acked) {
    if (at + std::chrono::milliseconds(100 + 100) > crash) continue;  // within the window
    ++checked;
    EXPECT_TRUE(survived.contains(id))
        << id << " acknowledged "
        << std::chrono::duration_cast<std::chrono::milliseconds>(crash - at).count()
        << " ms before the crash was lost";
  }
  EXPECT_GT(checked, 100u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace conveyor
