// Topics in the engine: subscriber lists, and an event's tasks staged (invisible), then
// journaled by another engine (the topic's shard) and published, or discarded.
#include <gtest/gtest.h>

#include "engine/engine.h"

namespace conveyor {
namespace {

class RecordingJournal final : public Journal {
 public:
  void TaskCreated(const Task& task, std::string_view payload) override {
    created.emplace_back(task.id, std::string(payload));
    queues.push_back(task.queue != nullptr ? task.queue->name() : "");
  }
  void TaskChanged(const Task&) override {}
  void TaskRemoved(uint64_t, uint8_t) override {}
  void QueueConfigChanged(std::string_view, const QueueConfig&) override {}
  void TopicChanged(std::string_view topic, const std::vector<std::string>& q) override {
    topics.emplace_back(std::string(topic), q);
  }
  void WhenDurable(Callback<void(Error)> done) override { done(Error{}); }

  std::vector<std::pair<uint64_t, std::string>> created;
  std::vector<std::string> queues;
  std::vector<std::pair<std::string, std::vector<std::string>>> topics;
};

class EngineTopicsTest : public ::testing::Test {
 protected:
  EngineTopicsTest()
      : subscriber_(clock_, subscriber_journal_, shared_, Limits{}, 1),
        topic_shard_(clock_, topic_journal_, shared_, Limits{}, 2) {}

  static std::vector<TaskSpec> Specs(std::vector<std::string> payloads, std::string key = {}) {
    std::vector<TaskSpec> specs;
    for (auto& p : payloads) {
      TaskSpec spec;
      spec.payload = p;
      spec.idempotency_key = key;
      specs.push_back(std::move(spec));
    }
    return specs;
  }

  size_t Ready(std::string_view queue) {
    return subscriber_.QueueStats(queue).counts[static_cast<size_t>(TaskState::kReady)];
  }

  ManualClock clock_;
  RecordingJournal subscriber_journal_, topic_journal_;
  ServerWide shared_{Limits{}};
  Engine subscriber_, topic_shard_;
};

TEST_F(EngineTopicsTest, SubscriberListsAreCheckedSortedAndJournaled) {
  auto set = topic_shard_.SetTopic("orders", {"stock", "email", "stock"});
  ASSERT_TRUE(set.error.ok());
  EXPECT_EQ(set.value, (std::vector<std::string>{"email", "stock"}));
  EXPECT_EQ(topic_journal_.topics.back().second, set.value);
  EXPECT_EQ(topic_shard_.GetTopic("orders").value, set.value);
  EXPECT_EQ(topic_shard_.SetTopic("t", {}).error.code, ErrorCode::kInvalidField);
  EXPECT_EQ(topic_shard_.SetTopic("t", {"bad name"}).error.code, ErrorCode::kInvalidField);
  EXPECT_EQ(topic_shard_.GetTopic("t").error.code, ErrorCode::kNotFound);
  ASSERT_TRUE(topic_shard_.DeleteTopic("orders").ok());
  EXPECT_TRUE(topic_journal_.topics.back().second.empty());  // a deletion
  EXPECT_EQ(topic_shard_.DeleteTopic("orders").code, ErrorCode::kNotFound);
}

TEST_F(EngineTopicsTest, StagedTasksAreInvisibleUntilPublishedAndJournaledElsewhere) {
  StageResult staged = subscriber_.Stage("email", Specs({"\"a\"", "\"b\""}));
  ASSERT_TRUE(staged.error.ok());
  ASSERT_EQ(staged.staged.size(), 2u);
  EXPECT_TRUE(subscriber_journal_.created.empty());  // not journaled on its own shard
  EXPECT_EQ(Ready("email"), 0u);
  EXPECT_EQ(subscriber_.GetTask(staged.tasks[0].id).error.code, ErrorCode::kNotFound);

  ASSERT_TRUE(topic_shard_.JournalStaged(staged.staged).ok());
  ASSERT_EQ(topic_journal_.created.size(), 2u);
  EXPECT_EQ(topic_journal_.created[0], std::make_pair(staged.tasks[0].id, std::string("\"a\"")));
  EXPECT_EQ(topic_journal_.queues[0], "email");

  subscriber_.PublishStaged({staged.tasks[0].id, staged.tasks[1].id});
  EXPECT_EQ(Ready("email"), 2u);
}

TEST_F(EngineTopicsTest, DiscardedTasksLeaveNothingBehind) {
  const size_t live_before = shared_.live_tasks.used();
  StageResult staged = subscriber_.Stage("email", Specs({"1"}, "key-1"));
  ASSERT_TRUE(staged.error.ok());
  EXPECT_EQ(shared_.live_tasks.used(), live_before + 1);
  subscriber_.DiscardStaged({staged.tasks[0].id});
  EXPECT_EQ(shared_.live_tasks.used(), live_before);
  EXPECT_EQ(subscriber_.QueueStats("email").totals.enqueued, 0u);
  // The key is free again: a new event with it is not a duplicate.
  StageResult again = subscriber_.Stage("email", Specs({"1"}, "key-1"));
  ASSERT_EQ(again.staged.size(), 1u);
  EXPECT_FALSE(again.tasks[0].duplicate);
  StageResult dup = subscriber_.Stage("email", Specs({"1"}, "key-1"));
  EXPECT_TRUE(dup.tasks[0].duplicate);
  EXPECT_TRUE(dup.staged.empty());
}

}  // namespace
}  // namespace conveyor
