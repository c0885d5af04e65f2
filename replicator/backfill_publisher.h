// The source side of a migration backfill: publishes every workflow run of a namespace that
// existed before the target joined, whole (every branch), to the target over this cluster's
// backfill topic <prefix>.<self>.backfill (partition = shard), where only the target applies it
// (HistoryMessage.backfill_target; its PeerApplier in PeerStream::kBackfill mode). See
// docs/migration.md for why this path cannot hold up live replication and how it interleaves
// with live tasks (gaps, resends, duplicates).
//
// Progress: one BackfillState per namespace in the store. The walk follows the store's key order
// of the namespace's runs; a step publishes up to tunables.backfill_batch_workflows runs, waits
// until Kafka acknowledged all of them, then stores the cursor (the last run's key) and the
// per-shard counts in one synced write. A crash between publishing and storing re-publishes the
// step: the target drops duplicates. After a restart RUNNING backfills resume from their cursor.
//
// Rate: a token bucket of rate_workflows_per_second runs per second (at most one second of
// burst), per namespace (the BackfillState holds it).
//
// Thread-safety: one publishing thread; the public methods may be called from any thread (jobs_
// is guarded by mu_).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "replicator/clock.h"
#include "replicator/kafka_client.h"
#include "replicator/namespace_registry.h"
#include "replicator/tunables.h"
#include "store/store.h"

namespace xdc {

class BackfillPublisher {
 public:
  BackfillPublisher(const DaemonConfig& config, const Tunables& tunables, Store& store,
                    NamespaceRegistry& namespaces, Clock clock);
  ~BackfillPublisher();

  // Loads the stored backfills, creates the producer and starts the thread.
  [[nodiscard]] absl::Status Start(const std::string& bootstrap);
  void Stop();

  // Starts (or resumes: an aborted backfill to the same target continues from its cursor; a running
  // one is answered as it is) the backfill of a namespace active here to a member cluster. The
  // caller makes sure the target already lists itself as a member (xdcctl migration start checks
  // it): see docs/migration.md.
  [[nodiscard]] absl::StatusOr<MigrationStatusResponse> StartMigration(
      const StartMigrationRequest& request);
  [[nodiscard]] absl::StatusOr<MigrationStatusResponse> Status(const std::string& name) const;
  // Stops a running backfill, keeping its cursor (start resumes it).
  [[nodiscard]] absl::StatusOr<MigrationStatusResponse> Abort(const std::string& name);

 private:
  struct Job {
    BackfillState state;
    // This process's view, for the measured rate: when it started running here and the runs
    // done then.
    int64_t running_since_micros = 0;
    int64_t done_at_start = 0;
    double tokens = 0;  // runs that may be published now (token bucket)
    int64_t refilled_micros = 0;
    int64_t retry_after_micros = 0;  // after a failed step
    uint64_t generation = 0;         // bumped by start/abort: a step of an older one is dropped
  };

  void Run();
  // Publishes up to `max_runs` runs after `state`'s cursor and waits for Kafka's acks; the new
  // state (cursor, counts, COMPLETED at the end), not yet stored. UNAVAILABLE if any message of
  // the step was not delivered: the step is then retried from `state`'s cursor.
  [[nodiscard]] absl::StatusOr<BackfillState> Step(const BackfillState& state, size_t max_runs);
  // Counts the namespace's runs per shard (the totals).
  [[nodiscard]] absl::Status CountRuns(BackfillState& state) const;
  [[nodiscard]] MigrationStatusResponse StatusOf(const Job& job) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  [[nodiscard]] absl::StatusOr<std::string> NamespaceId(const std::string& name) const;

  const DaemonConfig& config_;
  const Tunables& tunables_;
  Store& store_;
  NamespaceRegistry& namespaces_;
  Clock clock_;
  const std::string topic_;
  std::unique_ptr<KafkaProducer> producer_;  // used by the thread only (after Start)
  // Delivery reports that were failures, and the last one's error: written by the producer's
  // delivery callback, which runs inside Poll() and Flush() on the thread. A step counts them
  // so that it advances the cursor only over runs whose every message Kafka acknowledged
  // (Flush() succeeds once the queue is empty, failed messages included).
  int64_t failed_deliveries_ = 0;
  std::string last_delivery_error_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::map<std::string, Job> jobs_ ABSL_GUARDED_BY(mu_);  // by namespace id
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace xdc
