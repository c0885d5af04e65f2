#include "replicator/reapply_sweeper.h"

#include <cstdio>
#include <vector>

#include "absl/strings/str_format.h"
#include "protocol/reapplication.h"
#include "protocol/shard_hash.h"
#include "replicator/logger.h"

namespace xdc {

ReapplySweeper::ReapplySweeper(const DaemonConfig& config, Store& store, WorkflowWriter& writer,
                               const TaskApplier& task_applier)
    : config_(config), store_(store), writer_(writer), task_applier_(task_applier) {}

ReapplySweeper::~ReapplySweeper() { Stop(); }

void ReapplySweeper::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ReapplySweeper::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ReapplySweeper::Request(const std::string& namespace_id) {
  absl::MutexLock lock(&mu_);
  requests_.push_back(namespace_id);
}

void ReapplySweeper::Run() {
  while (true) {
    std::string namespace_id;
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]()
                       ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || !requests_.empty(); };
      mu_.Await(absl::Condition(&woken));
      if (stopping_) return;
      namespace_id = std::move(requests_.front());
      requests_.pop_front();
    }
    absl::StatusOr<int64_t> reapplied = Sweep(namespace_id);
    if (!reapplied.ok()) {
      log::Write(log::Level::kWarning, "reapply.sweep_failed",
                 absl::StrFormat("reapplication sweep of namespace %s failed: %s",
                                 namespace_id.c_str(), reapplied.status().ToString().c_str()));
    } else if (*reapplied > 0) {
      log::Write(log::Level::kInfo, "",
                 absl::StrFormat("reapplied %lld signals/cancels/terminations of losing branches "
                                 "in namespace %s now that it is active here",
                                 static_cast<long long>(*reapplied), namespace_id.c_str()));
    }
  }
}

absl::StatusOr<int64_t> ReapplySweeper::Sweep(const std::string& namespace_id) {
  if (!task_applier_.ActiveFor(namespace_id).has_value()) return 0;
  // A write decided before this cluster became active (the run left reapply_pending) may still
  // be queued, not yet in the store the scan reads. It was queued under its shard's lock, so
  // once every shard's lock was taken and an empty write after it is durable, the scan sees it;
  // a write decided after that reads the new record and reapplies by itself.
  if (absl::Status s = writer_.WithAllShardsLocked([&]() -> absl::Status {
        StoreWrite barrier;
        return store_.CommitWrite(barrier).status();
      });
      !s.ok()) {
    return s;
  }
  std::vector<WorkflowKey> pending;
  if (absl::Status s = store_.ForEachWorkflow(namespace_id,
                                              [&](const WorkflowMutableState& state) {
                                                if (state.reapply_pending()) {
                                                  pending.push_back(state.key());
                                                }
                                                return absl::OkStatus();
                                              });
      !s.ok()) {
    return s;
  }
  int64_t reapplied = 0;
  for (const WorkflowKey& key : pending) {
    absl::StatusOr<int64_t> done = SweepRun(key);
    if (!done.ok()) return done.status();
    reapplied += *done;
  }
  return reapplied;
}

absl::StatusOr<int64_t> ReapplySweeper::SweepRun(const WorkflowKey& key) {
  const int32_t shard = ShardFor(key.namespace_id(), key.workflow_id(), config_.shard_count());
  int64_t reapplied = 0;
  // One replication task's worth of copies per write (protocol/reapplication.h), until none is
  // left or the namespace is no longer active here.
  bool more = true;
  while (more) {
    more = false;
    absl::StatusOr<int64_t> done =
        writer_.Commit(shard, [&](WorkflowWriter::View& view, StoreWrite& write) -> absl::Status {
          absl::StatusOr<std::optional<WorkflowMutableState>> state = view.State(key);
          if (!state.ok()) return state.status();
          if (!state->has_value() || !(*state)->reapply_pending()) return absl::OkStatus();
          WorkflowMutableState updated = **state;
          absl::StatusOr<ReapplyOutcome> outcome =
              Reapply(updated, view.Events(key), task_applier_.ActiveFor(key.namespace_id()));
          if (!outcome.ok()) return outcome.status();
          WorkflowWrite update;
          update.state = updated;
          update.events = outcome->appended;
          write.workflows.push_back(std::move(update));
          if (!outcome->appended.empty()) {
            write.outbox_task = task_applier_.LocalTask(shard, updated, outcome->appended);
            // Reapplied events are writes of this cluster: durable before anything builds on
            // them (as TaskApplier::Stage does).
            write.durability = Durability::kSynced;
            more = outcome->pending;
          }
          reapplied += static_cast<int64_t>(outcome->appended.size());
          return absl::OkStatus();
        });
    if (!done.ok()) return done.status();
  }
  return reapplied;
}

}  // namespace xdc
