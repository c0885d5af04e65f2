#include "replicator/backfill_publisher.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "protocol/branch_tasks.h"
#include "protocol/config.h"
#include "protocol/federation.h"
#include "protocol/message_codec.h"
#include "protocol/shard_hash.h"
#include "replicator/logger.h"
#include "replicator/peer_applier.h"

namespace xdc {
namespace {

// The longest the thread waits before looking at its jobs again (a start or abort wakes it).
constexpr int64_t kIdleWaitMicros = 500'000;

int64_t DoneOf(const BackfillState& state) {
  int64_t done = 0;
  for (const BackfillShardProgress& shard : state.shards()) done += shard.workflows_done();
  return done;
}

int64_t TotalOf(const BackfillState& state) {
  int64_t total = 0;
  for (const BackfillShardProgress& shard : state.shards()) total += shard.workflows_total();
  return total;
}

}  // namespace

BackfillPublisher::BackfillPublisher(const DaemonConfig& config, const Tunables& tunables,
                                     Store& store, NamespaceRegistry& namespaces, Clock clock)
    : config_(config),
      tunables_(tunables),
      store_(store),
      namespaces_(namespaces),
      clock_(std::move(clock)),
      topic_(BackfillTopic(config.cluster_name(), config.kafka().topic_prefix())) {}

BackfillPublisher::~BackfillPublisher() { Stop(); }

absl::Status BackfillPublisher::Start(const std::string& bootstrap) {
  absl::StatusOr<std::vector<BackfillState>> stored = store_.ListBackfillStates();
  if (!stored.ok()) return stored.status();
  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
      bootstrap, absl::StrFormat("xdc.%s.backfill", config_.cluster_name()),
      [this](uint64_t, const absl::Status& delivered) {
        if (delivered.ok()) return;
        ++failed_deliveries_;
        last_delivery_error_ = delivered.ToString();
      },
      KafkaPropertiesOf(config_.kafka()));
  if (!producer.ok()) return producer.status();
  producer_ = *std::move(producer);
  if (absl::Status s = producer_->LearnTopics({topic_}, tunables_.topic_metadata_timeout_ms);
      !s.ok()) {
    log::Write(log::Level::kWarning, "", absl::StrCat("backfill publisher: ", s.ToString()));
  }
  {
    absl::MutexLock lock(&mu_);
    const int64_t now = clock_();
    for (BackfillState& state : *stored) {
      Job& job = jobs_[state.namespace_id()];
      if (state.phase() == BACKFILL_PHASE_RUNNING) {
        state.set_resumed_count(state.resumed_count() + 1);
        job.running_since_micros = now;
        job.refilled_micros = now;
        job.done_at_start = DoneOf(state);
        log::Write(log::Level::kInfo, "",
                   absl::StrFormat("backfill of namespace '%s' to '%s' resumes at %lld of %lld "
                                   "workflow runs",
                                   state.namespace_name().c_str(), state.target_cluster().c_str(),
                                   static_cast<long long>(DoneOf(state)),
                                   static_cast<long long>(TotalOf(state))));
      }
      job.state = std::move(state);
    }
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void BackfillPublisher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<std::string> BackfillPublisher::NamespaceId(const std::string& name) const {
  absl::StatusOr<NamespaceRecord> record = namespaces_.Get(name);
  if (!record.ok()) return record.status();
  return record->id();
}

absl::Status BackfillPublisher::CountRuns(BackfillState& state) const {
  state.clear_shards();
  for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
    state.add_shards()->set_shard(shard);
  }
  return store_.ForEachWorkflow(
      state.namespace_id(), [&](const WorkflowMutableState& run) -> absl::Status {
        const int32_t shard =
            ShardFor(run.key().namespace_id(), run.key().workflow_id(), config_.shard_count());
        BackfillShardProgress* progress = state.mutable_shards(shard);
        progress->set_workflows_total(progress->workflows_total() + 1);
        return absl::OkStatus();
      });
}

absl::StatusOr<MigrationStatusResponse> BackfillPublisher::StartMigration(
    const StartMigrationRequest& request) {
  absl::StatusOr<NamespaceRecord> record = namespaces_.Get(request.namespace_());
  if (!record.ok()) return record.status();
  const std::string& self = config_.cluster_name();
  const std::string& target = request.target_cluster();
  if (target.empty()) {
    return absl::InvalidArgumentError("target_cluster is missing: name the joining cluster");
  }
  if (record->active_cluster() != self) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "namespace '%s' is active on '%s': start its migration there (the active cluster holds "
        "every history and publishes the backfill)",
        record->name(), record->active_cluster()));
  }
  if (target == self) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' is this cluster: --to names the cluster to migrate to", target));
  }
  if (!IsNamespaceMember(*record, target)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cluster '%s' is not a member of namespace '%s': add it first (xdcctl namespace "
        "add-cluster %s --cluster %s), then start the migration",
        target, record->name(), record->name(), target));
  }
  const int64_t rate = request.rate_workflows_per_second() > 0
                           ? request.rate_workflows_per_second()
                           : tunables_.backfill_default_workflows_per_second;
  if (rate > tunables_.backfill_max_workflows_per_second) {
    return absl::InvalidArgumentError(
        absl::StrFormat("rate %d workflow runs/s is above the most allowed (%d): ask for less",
                        rate, tunables_.backfill_max_workflows_per_second));
  }
  absl::MutexLock lock(&mu_);
  Job& job = jobs_[record->id()];
  const bool same_target = job.state.target_cluster() == target;
  if (job.state.phase() == BACKFILL_PHASE_RUNNING) {
    if (!same_target) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "namespace '%s' is already backfilling to '%s': abort it first (xdcctl migration abort "
          "--namespace %s)",
          record->name(), job.state.target_cluster(), record->name()));
    }
    return StatusOf(job);  // a retried request
  }
  BackfillState next = job.state;
  const bool resume = same_target && job.state.phase() == BACKFILL_PHASE_ABORTED;
  const int64_t now = clock_();
  if (!resume) {
    next.Clear();
    next.set_namespace_id(record->id());
    next.set_target_cluster(target);
    next.set_started_unix_micros(now);
    if (absl::Status s = CountRuns(next); !s.ok()) return s;
  }
  next.set_namespace_name(record->name());
  next.set_phase(BACKFILL_PHASE_RUNNING);
  next.set_rate_workflows_per_second(rate);
  next.clear_error();
  if (absl::Status s = store_.PutBackfillState(next); !s.ok()) return s;
  job.state = std::move(next);
  job.running_since_micros = now;
  job.refilled_micros = now;
  job.tokens = 0;
  job.retry_after_micros = 0;
  job.done_at_start = DoneOf(job.state);
  ++job.generation;
  wake_ = true;
  log::Write(
      log::Level::kInfo, "",
      absl::StrFormat("backfill of namespace '%s' to '%s' %s: %lld of %lld workflow runs "
                      "done, at most %lld runs/s",
                      record->name().c_str(), target.c_str(), resume ? "resumed" : "started",
                      static_cast<long long>(DoneOf(job.state)),
                      static_cast<long long>(TotalOf(job.state)), static_cast<long long>(rate)));
  return StatusOf(job);
}

absl::StatusOr<MigrationStatusResponse> BackfillPublisher::Status(const std::string& name) const {
  absl::StatusOr<std::string> id = NamespaceId(name);
  if (!id.ok()) return id.status();
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(*id);
  if (it == jobs_.end()) {
    return absl::NotFoundError(absl::StrFormat(
        "namespace '%s' has no migration on '%s': start one with xdcctl migration start (on the "
        "namespace's active cluster)",
        name, config_.cluster_name()));
  }
  return StatusOf(it->second);
}

absl::StatusOr<MigrationStatusResponse> BackfillPublisher::Abort(const std::string& name) {
  absl::StatusOr<std::string> id = NamespaceId(name);
  if (!id.ok()) return id.status();
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(*id);
  if (it == jobs_.end() || it->second.state.phase() != BACKFILL_PHASE_RUNNING) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "namespace '%s' has no running backfill on '%s' to abort", name, config_.cluster_name()));
  }
  Job& job = it->second;
  BackfillState next = job.state;
  next.set_phase(BACKFILL_PHASE_ABORTED);
  if (absl::Status s = store_.PutBackfillState(next); !s.ok()) return s;
  job.state = std::move(next);
  ++job.generation;
  log::Write(log::Level::kInfo, "",
             absl::StrFormat("backfill of namespace '%s' to '%s' aborted at %lld of %lld runs; "
                             "`xdcctl migration start` resumes it",
                             name.c_str(), job.state.target_cluster().c_str(),
                             static_cast<long long>(DoneOf(job.state)),
                             static_cast<long long>(TotalOf(job.state))));
  return StatusOf(job);
}

MigrationStatusResponse BackfillPublisher::StatusOf(const Job& job) const {
  MigrationStatusResponse response;
  *response.mutable_backfill() = job.state;
  const int64_t done = DoneOf(job.state);
  const int64_t total = TotalOf(job.state);
  response.set_workflows_done(done);
  response.set_workflows_total(total);
  response.set_eta_seconds(-1);
  if (job.state.phase() == BACKFILL_PHASE_COMPLETED) {
    response.set_eta_seconds(0);
  } else if (job.state.phase() == BACKFILL_PHASE_RUNNING && job.running_since_micros > 0) {
    const double seconds = static_cast<double>(clock_() - job.running_since_micros) / 1e6;
    if (seconds > 0) {
      const double rate = static_cast<double>(done - job.done_at_start) / seconds;
      response.set_rate_workflows_per_second(rate);
      if (rate > 0) {
        response.set_eta_seconds(static_cast<int64_t>(std::max<int64_t>(0, total - done) / rate));
      }
    }
  }
  return response;
}

absl::StatusOr<BackfillState> BackfillPublisher::Step(const BackfillState& state, size_t max_runs) {
  BackfillState next = state;
  const int64_t failed_before = failed_deliveries_;
  absl::StatusOr<std::vector<WorkflowMutableState>> runs = store_.ListWorkflows(
      state.namespace_id(), state.cursor_set() ? &state.cursor() : nullptr, max_runs);
  if (!runs.ok()) return runs.status();
  const int64_t now = clock_();
  for (const WorkflowMutableState& run : *runs) {
    const WorkflowKey& key = run.key();
    const int32_t shard = ShardFor(key.namespace_id(), key.workflow_id(), config_.shard_count());
    BackfillShardProgress* progress = next.mutable_shards(shard);
    // Every branch; the current one last (each applies in any order, see docs/migration.md).
    const VersionHistories& histories = run.version_histories();
    std::vector<int> order;
    for (int i = 0; i < histories.histories_size(); ++i) {
      if (i != histories.current_index()) order.push_back(i);
    }
    order.push_back(histories.current_index());
    for (int index : order) {
      const VersionHistory& branch = histories.histories(index);
      absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> events =
          store_.ReadBranch(key, branch);
      if (!events.ok()) return events.status();
      if (events->empty()) continue;
      absl::StatusOr<std::vector<ReplicationTask>> tasks = SplitBranchIntoTasks(
          key, branch, std::vector<HistoryEvent>(events->begin(), events->end()),
          tunables_.max_events_per_append, tunables_.max_task_bytes);
      if (!tasks.ok()) return tasks.status();
      for (ReplicationTask& task : *tasks) {
        task.set_shard(shard);
        task.set_source_cluster(config_.cluster_name());
        task.set_created_unix_micros(now);
        task.set_task_id(progress->next_task_id());
        progress->set_next_task_id(progress->next_task_id() + 1);
        progress->set_events_published(progress->events_published() + task.events_size());
        HistoryMessage message;
        *message.mutable_task() = std::move(task);
        message.set_backfill_target(state.target_cluster());
        const std::string payload = EncodeFrame(message);
        while (true) {
          absl::Status s = producer_->Produce(topic_, shard, payload, 0);
          if (s.ok()) break;
          if (!absl::IsResourceExhausted(s)) return s;
          producer_->Poll(10);  // the local queue is full: let deliveries drain it
        }
      }
    }
    progress->set_workflows_done(progress->workflows_done() + 1);
    // A run started after the count (replicated live as well) is published too: the total is
    // what the walk publishes.
    progress->set_workflows_total(
        std::max(progress->workflows_total(), progress->workflows_done()));
    *next.mutable_cursor() = key;
    next.set_cursor_set(true);
  }
  // Nothing is counted as done before Kafka acknowledged it: every message, not only the flush.
  if (absl::Status s = producer_->Flush(tunables_.backfill_flush_timeout_ms); !s.ok()) return s;
  if (const int64_t failed = failed_deliveries_ - failed_before; failed > 0) {
    return absl::UnavailableError(absl::StrFormat(
        "Kafka did not deliver %d messages of this step (last error: %s); the step is published "
        "again from the stored cursor",
        failed, last_delivery_error_));
  }
  if (runs->size() < max_runs) {
    next.set_phase(BACKFILL_PHASE_COMPLETED);
    next.set_completed_unix_micros(clock_());
  }
  return next;
}

void BackfillPublisher::Run() {
  while (true) {
    std::string id;
    BackfillState state;
    uint64_t generation = 0;
    size_t max_runs = 0;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      const int64_t now = clock_();
      int64_t wait_micros = kIdleWaitMicros;
      for (auto& [job_id, job] : jobs_) {
        if (job.state.phase() != BACKFILL_PHASE_RUNNING) continue;
        if (now < job.retry_after_micros) {
          wait_micros = std::min(wait_micros, job.retry_after_micros - now);
          continue;
        }
        // Token bucket: rate per second, at most one second's worth banked.
        const double rate = static_cast<double>(job.state.rate_workflows_per_second());
        job.tokens = std::min(
            rate, job.tokens + rate * static_cast<double>(now - job.refilled_micros) / 1e6);
        job.refilled_micros = now;
        if (job.tokens < 1) {
          wait_micros =
              std::min(wait_micros, static_cast<int64_t>((1 - job.tokens) / rate * 1e6) + 1);
          continue;
        }
        id = job_id;
        state = job.state;
        generation = job.generation;
        max_runs = std::min(static_cast<size_t>(job.tokens), tunables_.backfill_batch_workflows);
        break;
      }
      if (id.empty()) {
        wake_ = false;
        auto woken = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || wake_; };
        mu_.AwaitWithTimeout(absl::Condition(&woken), absl::Microseconds(wait_micros));
        continue;
      }
    }
    absl::StatusOr<BackfillState> next = Step(state, max_runs);
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.generation != generation) continue;  // aborted meanwhile
    Job& job = it->second;
    if (!next.ok()) {
      job.retry_after_micros = clock_() + int64_t{tunables_.backfill_retry_ms} * 1000;
      job.state.set_error(next.status().ToString());
      log::Write(log::Level::kWarning, "backfill.step_failed",
                 absl::StrFormat("backfill of namespace '%s' to '%s': a step failed, retrying in "
                                 "%d ms: %s",
                                 state.namespace_name().c_str(), state.target_cluster().c_str(),
                                 tunables_.backfill_retry_ms, next.status().ToString().c_str()));
      continue;
    }
    next->clear_error();
    if (absl::Status s = store_.PutBackfillState(*next); !s.ok()) {
      job.retry_after_micros = clock_() + int64_t{tunables_.backfill_retry_ms} * 1000;
      job.state.set_error(s.ToString());
      log::Write(log::Level::kWarning, "backfill.step_failed",
                 absl::StrFormat("backfill of namespace '%s': storing its cursor failed: %s",
                                 state.namespace_name().c_str(), s.ToString().c_str()));
      continue;
    }
    job.tokens -= static_cast<double>(DoneOf(*next) - DoneOf(state));
    job.state = *std::move(next);
    if (job.state.phase() == BACKFILL_PHASE_COMPLETED) {
      log::Write(
          log::Level::kInfo, "",
          absl::StrFormat("backfill of namespace '%s' to '%s' completed: %lld workflow "
                          "runs published",
                          job.state.namespace_name().c_str(), job.state.target_cluster().c_str(),
                          static_cast<long long>(DoneOf(job.state))));
    }
  }
}

}  // namespace xdc
