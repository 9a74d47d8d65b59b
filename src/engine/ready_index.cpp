#include "engine/ready_index.h"

#include <algorithm>

#include "common/absl_view.h"
#include "engine/saturating.h"

namespace conveyor {

namespace {

// With aging, a task's rank is its ready time less `priority` aging periods: the earlier
// the rank, the higher priority + waited / aging_ms is at any moment.
int64_t AgedRank(const Task& t, int64_t aging_ms) {
  const __int128 rank = static_cast<__int128>(t.ready_at) -
                        static_cast<__int128>(t.priority) * static_cast<__int128>(aging_ms);
  if (rank > INT64_MAX) return INT64_MAX;
  if (rank < INT64_MIN) return INT64_MIN;
  return static_cast<int64_t>(rank);
}

bool AfterPriority(const Task& a, const Task& b) {
  const int64_t da = a.deadline(), db = b.deadline();
  if (da != db) return da < db;
  if (a.ready_at != b.ready_at) return a.ready_at < b.ready_at;
  return a.id < b.id;
}

}  // namespace

bool ReadyOrder::operator()(const Task* a, const Task* b) const {
  if (aging_ms > 0) {
    const int64_t ra = AgedRank(*a, aging_ms), rb = AgedRank(*b, aging_ms);
    if (ra != rb) return ra < rb;
  } else if (a->priority != b->priority) {
    return a->priority > b->priority;
  }
  return AfterPriority(*a, *b);
}

bool BeforeAcrossQueues(const Task& a, const Task& b) {
  if (a.priority != b.priority) return a.priority > b.priority;
  return AfterPriority(a, b);
}

bool KeyOrder::operator()(const KeyState* a, const KeyState* b) const {
  const Task* ha = *a->ready.begin();
  const Task* hb = *b->ready.begin();
  if (fair) {
    if (ha->priority != hb->priority) return ha->priority > hb->priority;
    if (a->pass != b->pass) return a->pass < b->pass;
    return a->seq < b->seq;
  }
  if (order(ha, hb)) return true;
  if (order(hb, ha)) return false;
  return a->seq < b->seq;
}

ReadyIndex::ReadyIndex(const Clock& clock) : clock_(clock) { InitKey(none_); }

ReadyIndex::~ReadyIndex() = default;

void ReadyIndex::InitKey(KeyState& key) {
  key.owner = this;
  key.seq = next_seq_++;
  key.ready = ReadySet(ReadyOrder{aging_ms_});
  auto w = weights_.find(key.name);
  key.weight = w == weights_.end() ? 1 : w->second;
  if (rate_ && rate_->per_key)
    key.bucket.Configure(rate_->per_second, rate_->burst, clock_.MonoMs());
}

void ReadyIndex::Configure(const QueueConfig& config) {
  const int64_t now = clock_.MonoMs();
  const bool reorder = config.aging_ms != aging_ms_ || config.fair_by_key != fair_;
  rate_ = config.rate_limit;
  max_ = config.concurrency && !config.concurrency->per_key ? config.concurrency->max : 0;
  per_key_max_ = config.concurrency && config.concurrency->per_key ? config.concurrency->max : 0;
  fair_ = config.fair_by_key;
  aging_ms_ = config.aging_ms;
  weights_.clear();
  for (const auto& [key, weight] : config.key_weights)
    weights_[key] = std::max<uint32_t>(1, weight);
  if (rate_ && !rate_->per_key) bucket_.Configure(rate_->per_second, rate_->burst, now);
  auto configure_key = [&](KeyState& k) {
    auto w = weights_.find(k.name);
    k.weight = w == weights_.end() ? 1 : w->second;
    if (rate_ && rate_->per_key) k.bucket.Configure(rate_->per_second, rate_->burst, now);
  };
  configure_key(none_);
  for (auto& [name, key] : keys_) configure_key(*key);
  if (reorder) {
    Rebuild();
    return;
  }
  // Limits changed: every key's place is decided again.
  std::vector<KeyState*> all{&none_};
  for (auto& [name, key] : keys_) all.push_back(key.get());
  for (KeyState* k : all) Unplace(*k);
  for (KeyState* k : all) Place(*k, now);
}

// Every ready task sorted again (aging or fairness changed the order).
void ReadyIndex::Rebuild() {
  const int64_t now = clock_.MonoMs();
  std::vector<KeyState*> all{&none_};
  for (auto& [name, key] : keys_) all.push_back(key.get());
  for (KeyState* k : all) Unplace(*k);
  eligible_ = absl::btree_set<KeyState*, KeyOrder>(KeyOrder{ReadyOrder{aging_ms_}, fair_});
  for (KeyState* k : all) {
    std::vector<const Task*> tasks(k->ready.begin(), k->ready.end());
    k->ready = ReadySet(tasks.begin(), tasks.end(), ReadyOrder{aging_ms_});
    Place(*k, now);
  }
}

KeyState* ReadyIndex::Intern(std::string_view name) {
  if (name.empty()) return nullptr;
  auto it = keys_.find(AbslView(name));
  if (it == keys_.end()) {
    auto key = std::make_unique<KeyState>();
    key->name = std::string(name);
    InitKey(*key);
    it = keys_.emplace(key->name, std::move(key)).first;
  }
  ++it->second->refs;
  return it->second.get();
}

void ReadyIndex::Release(KeyState* key) {
  if (key == nullptr || --key->refs > 0 || key->idle_listed) return;
  key->idle_listed = true;
  key->owner->idle_.push_back(key);
}

// Forgets keys with no task left whose limits have nothing more to hold (their bucket is
// full again, their pause is over), a few a call.
void ReadyIndex::CollectIdle(int64_t now, size_t budget) {
  while (!idle_.empty() && budget-- > 0) {
    KeyState* k = idle_.front();
    idle_.pop_front();
    if (k->refs > 0) {
      k->idle_listed = false;
      continue;
    }
    const bool rate_done = !(rate_ && rate_->per_key) || k->bucket.Full(now);
    if (k->paused_until > now || !rate_done) {
      idle_.push_back(k);  // still remembering: look again later
      continue;
    }
    const std::string name = k->name;
    keys_.erase(AbslView(name));
  }
}

void ReadyIndex::Unplace(KeyState& k) {
  switch (k.place) {
    case KeyState::Place::kEligible:
      eligible_.erase(&k);
      break;
    case KeyState::Place::kWaiting:
      waiting_.erase({k.wait_due, &k});
      break;
    default:
      break;
  }
  k.place = KeyState::Place::kNone;
}

void ReadyIndex::Place(KeyState& k, int64_t now) {
  if (k.ready.empty()) {
    k.place = KeyState::Place::kNone;
    return;
  }
  k.held_by_rate = false;
  if (k.paused_until > now) {
    k.place = KeyState::Place::kWaiting;
    k.wait_due = k.paused_until;
    waiting_.insert({k.wait_due, &k});
    return;
  }
  if (per_key_max_ > 0 && k.leased >= per_key_max_) {
    k.place = KeyState::Place::kSlots;
    return;
  }
  if (rate_ && rate_->per_key && !k.bucket.Has(now)) {
    k.place = KeyState::Place::kWaiting;
    k.held_by_rate = true;
    k.wait_due = k.bucket.NextAt(now);
    waiting_.insert({k.wait_due, &k});
    return;
  }
  k.place = KeyState::Place::kEligible;
  eligible_.insert(&k);
}

void ReadyIndex::Add(const Task& task) {
  KeyState& k = KeyOf(task);
  ++size_;
  // The usual case: a task that goes after its key's first one changes no key's place.
  if (k.place != KeyState::Place::kNone && !k.ready.key_comp()(&task, *k.ready.begin())) {
    k.ready.insert(k.ready.end(), &task);
    return;
  }
  const bool was_empty = k.ready.empty();
  Unplace(k);
  k.ready.insert(k.ready.end(), &task);
  // A key that comes back after a while starts level with the others (no saved-up share).
  if (was_empty && fair_) k.pass = std::max(k.pass, vtime_);
  Place(k, clock_.MonoMs());
}

void ReadyIndex::Remove(const Task& task) {
  KeyState& k = KeyOf(task);
  auto it = k.ready.find(&task);
  if (it == k.ready.end()) return;
  --size_;
  // Only an eligible key's place depends on its first task, and only among other keys: a
  // key alone in `eligible_` (every queue without keys) or waiting keeps its place. (An
  // erase and insert of the only element would free and allocate a B-tree node a lease.)
  const bool place_kept =
      k.ready.size() > 1 && (k.place != KeyState::Place::kEligible || eligible_.size() == 1);
  if (it != k.ready.begin() || place_kept) {
    k.ready.erase(it);
    return;
  }
  Unplace(k);
  k.ready.erase(it);
  Place(k, clock_.MonoMs());
}

void ReadyIndex::LeasedAdded(const Task& task) {
  KeyState& k = KeyOf(task);
  ++k.leased;
  ++leased_;
  if (per_key_max_ > 0 && k.leased >= per_key_max_ && k.place == KeyState::Place::kEligible) {
    Unplace(k);
    Place(k, clock_.MonoMs());
  }
}

void ReadyIndex::LeasedRemoved(const Task& task) {
  KeyState& k = KeyOf(task);
  if (k.leased > 0) --k.leased;
  if (leased_ > 0) --leased_;
  if (k.place == KeyState::Place::kSlots && k.leased < per_key_max_) {
    Unplace(k);
    Place(k, clock_.MonoMs());
  }
}

void ReadyIndex::Refresh(int64_t now) {
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    KeyState* k = waiting_.begin()->second;
    waiting_.erase(waiting_.begin());
    k->place = KeyState::Place::kNone;
    Place(*k, now);
  }
}

const Task* ReadyIndex::Next() {
  const int64_t now = clock_.MonoMs();
  if (!idle_.empty()) CollectIdle(now, 8);
  if (size_ == 0) return nullptr;
  Refresh(now);
  if (max_ > 0 && leased_ >= max_) return nullptr;
  if (rate_ && !rate_->per_key && !bucket_.Has(now)) return nullptr;
  if (eligible_.empty()) return nullptr;
  return *(*eligible_.begin())->ready.begin();
}

void ReadyIndex::Taken(const Task& task) {
  const int64_t now = clock_.MonoMs();
  if (rate_ && !rate_->per_key) bucket_.Take(now);
  KeyState& k = KeyOf(task);
  const bool per_key_rate = rate_ && rate_->per_key;
  if (!per_key_rate && !fair_) return;
  Unplace(k);
  if (per_key_rate) k.bucket.Take(now);
  if (fair_) {
    vtime_ = std::max(vtime_, k.pass);
    k.pass += kStride / k.weight;
  }
  Place(k, now);
}

void ReadyIndex::PauseKey(const Task& task, int64_t until) {
  KeyState& k = KeyOf(task);
  if (until <= k.paused_until) return;
  Unplace(k);
  k.paused_until = until;
  Place(k, clock_.MonoMs());
}

int64_t ReadyIndex::NextChangeAt() {
  const int64_t now = clock_.MonoMs();
  Refresh(now);
  int64_t next = waiting_.empty() ? kNever : waiting_.begin()->first;
  if (rate_ && !rate_->per_key && !eligible_.empty()) {
    next = std::min(next, bucket_.NextAt(now));
  }
  return next;
}

const Task* ReadyIndex::AnyHead() {
  if (const Task* next = Next()) return next;
  const Task* best = nullptr;
  auto consider = [&](const KeyState& k) {
    if (k.ready.empty()) return;
    const Task* head = *k.ready.begin();
    if (best == nullptr || ReadyOrder{aging_ms_}(head, best)) best = head;
  };
  consider(none_);
  for (const auto& [name, key] : keys_) consider(*key);
  return best;
}

FlowSnapshot ReadyIndex::Snapshot(size_t top_keys) const {
  const int64_t now = clock_.MonoMs();
  FlowSnapshot s;
  s.keys = keys_.size();
  s.leased = leased_;
  if (rate_ && !rate_->per_key) s.tokens = bucket_.Peek(now);
  const bool queue_rate_held = rate_ && !rate_->per_key && bucket_.Peek(now) < 1 - 1e-9;
  const bool queue_held = (max_ > 0 && leased_ >= max_) || queue_rate_held;
  std::vector<FlowSnapshot::KeyGauge> gauges;
  auto count = [&](const KeyState& k) {
    const uint64_t ready = k.ready.size();
    if (k.paused_until > now) ++s.paused_keys;
    // A key whose wait is over by now is eligible at the next lease.
    const KeyState::Place place = k.place == KeyState::Place::kWaiting && k.wait_due <= now
                                      ? KeyState::Place::kEligible
                                      : k.place;
    switch (place) {
      case KeyState::Place::kWaiting:
        (k.held_by_rate ? s.held_by_rate : s.held_by_pause) += ready;
        break;
      case KeyState::Place::kSlots:
        s.held_by_concurrency += ready;
        break;
      case KeyState::Place::kEligible:
        if (queue_held) {
          (queue_rate_held ? s.held_by_rate : s.held_by_concurrency) += ready;
        }
        break;
      default:
        break;
    }
    if (!k.name.empty() && ready + k.leased > 0) gauges.push_back({k.name, ready, k.leased});
  };
  count(none_);
  for (const auto& [name, key] : keys_) count(*key);
  const size_t n = std::min(top_keys, gauges.size());
  std::partial_sort(gauges.begin(), gauges.begin() + static_cast<std::ptrdiff_t>(n), gauges.end(),
                    [](const auto& a, const auto& b) {
                      if (a.ready + a.leased != b.ready + b.leased) {
                        return a.ready + a.leased > b.ready + b.leased;
                      }
                      return a.key < b.key;
                    });
  gauges.resize(n);
  s.top_keys = std::move(gauges);
  return s;
}

}  // namespace conveyor
