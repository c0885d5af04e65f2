#include "replicator/workflow_writer.h"

#include "store/keys.h"

namespace xdc {

WorkflowWriter::WorkflowWriter(Store& store, int32_t shard_count) : store_(store) {
  for (int32_t i = 0; i < shard_count; ++i) shards_.push_back(std::make_unique<Shard>());
}

absl::StatusOr<std::optional<WorkflowMutableState>> WorkflowWriter::View::State(
    const WorkflowKey& key) const {
  if (auto it = in_flight_.find(keys::Workflow(key)); it != in_flight_.end()) {
    return std::optional<WorkflowMutableState>(it->second.state);
  }
  return store_.GetWorkflowState(key);
}

const EventReader& WorkflowWriter::View::Events(const WorkflowKey& key) {
  auto it = in_flight_.find(keys::Workflow(key));
  readers_.push_back(
      std::make_unique<Reader>(store_, key, it == in_flight_.end() ? nullptr : &it->second));
  return *readers_.back();
}

bool WorkflowWriter::View::RequestInFlight(const std::string& namespace_id,
                                           const std::string& request_id) const {
  for (const auto& [key, entry] : in_flight_) {
    if (entry.state.key().namespace_id() != namespace_id) continue;
    for (const auto& [id, event] : entry.events) {
      if (event.request().request_id() == request_id) return true;
    }
  }
  return false;
}

absl::StatusOr<HistoryEvent> WorkflowWriter::View::Reader::Read(int64_t event_id,
                                                                int64_t version) const {
  if (in_flight_ != nullptr) {
    if (auto it = in_flight_->events.find({event_id, version}); it != in_flight_->events.end()) {
      return it->second;
    }
  }
  return store_.ReadEvent(key_, event_id, version);
}

absl::StatusOr<std::unique_ptr<WorkflowWriter::Pending>> WorkflowWriter::Queue(
    int32_t shard, const BuildFn& build) {
  auto pending = std::make_unique<Pending>();
  pending->shard_ = shard;
  Shard& s = *shards_.at(shard);
  absl::MutexLock lock(&s.mu);
  View view(store_, s.in_flight);
  if (absl::Status status = build(view, pending->write_); !status.ok()) return status;
  if (pending->write_.empty()) return pending;
  if (absl::Status status = store_.QueueWrite(pending->write_, pending->ticket_); !status.ok()) {
    return status;
  }
  pending->queued_ = true;
  for (const WorkflowWrite& update : pending->write_.workflows) {
    std::string key = keys::Workflow(update.state.key());
    InFlight& entry = s.in_flight[key];
    entry.state = update.state;
    ++entry.writes;
    for (const HistoryEvent& event : update.events) {
      entry.events[{event.event_id(), event.version()}] = event;
    }
    pending->keys_.push_back(std::move(key));
  }
  return pending;
}

absl::StatusOr<int64_t> WorkflowWriter::Wait(Pending& pending) {
  if (!pending.queued_) return -1;
  absl::StatusOr<int64_t> result = store_.WaitWrite(pending.write_, pending.ticket_);
  pending.queued_ = false;
  Shard& s = *shards_.at(pending.shard_);
  absl::MutexLock lock(&s.mu);
  for (const std::string& key : pending.keys_) {
    auto it = s.in_flight.find(key);
    if (--it->second.writes == 0) s.in_flight.erase(it);
  }
  return result;
}

absl::StatusOr<int64_t> WorkflowWriter::Commit(int32_t shard, const BuildFn& build) {
  absl::StatusOr<std::unique_ptr<Pending>> pending = Queue(shard, build);
  if (!pending.ok()) return pending.status();
  return Wait(**pending);
}

absl::Status WorkflowWriter::WithAllShardsLocked(const std::function<absl::Status()>& fn)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (auto& shard : shards_) shard->mu.Lock();
  absl::Status status = fn();
  for (auto it = shards_.rbegin(); it != shards_.rend(); ++it) (*it)->mu.Unlock();
  return status;
}

}  // namespace xdc
