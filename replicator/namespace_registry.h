// The namespaces this cluster knows: an in-memory view backed by the store.
//
// Local registrations and records merged from peers' control topics both land here; a change
// listener (the control publisher) announces changes to peers. If two clusters registered the
// same name with different ids, both records are kept and the name refers to the lower id on
// every cluster (logged).
//
// Every stored record comes with a NamespaceRecordLearned (when this cluster stored it, and from
// which cluster: this one for a registration or a change made here, else the peer whose record was
// merged), written in the same WriteBatch and kept in the meta CF, so it survives a restart
// without changing the replicated record. A merge that brings nothing newer stores nothing and
// keeps it.
//
// Thread-safe: guarded by mu_.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "replicator/clock.h"
#include "store/store.h"

namespace xdc {

class NamespaceRegistry {
 public:
  // `clock` stamps the time each record is stored (NamespaceRecordLearned).
  NamespaceRegistry(Store& store, const DaemonConfig& config, Clock clock = SystemNowMicros);

  // Loads the stored records. Call once before use.
  [[nodiscard]] absl::Status Load();

  // Registers a new namespace: valid name, known member clusters including this one, active
  // cluster among them. ALREADY_EXISTS if the name is taken. The record is stored (synced)
  // before it is returned.
  //
  // Every record write (register, merge, change) goes through the store's group committer
  // under mu_, so record writes become durable in the order they were made.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> Register(const RegisterNamespaceRequest& request);

  // Stores a record received from peer `from` if it is newer (see MergeNamespaceRecord). Returns
  // whether anything changed; INVALID_ARGUMENT for a record ValidateRecordVersions refuses.
  [[nodiscard]] absl::StatusOr<bool> Merge(const NamespaceRecord& incoming,
                                           const std::string& from);

  // Changes a record: `change` gets the current record and the store write the new record will
  // be committed with (so it can add to it: markers, a handover target's state), and returns
  // the new record, or nullopt to change nothing. The change is visible to readers as soon as it
  // is queued (under this registry's lock, so record writes are durable in the order readers saw
  // them), then waited for (synced) and announced. Returns the record as it stands afterwards.
  using ChangeFn = std::function<absl::StatusOr<std::optional<NamespaceRecord>>(
      const NamespaceRecord& current, StoreWrite& write)>;
  [[nodiscard]] absl::StatusOr<NamespaceRecord> Change(const std::string& id,
                                                       const ChangeFn& change);

  [[nodiscard]] std::optional<NamespaceRecord> FindByName(const std::string& name) const;
  // The record named `name`, or NOT_FOUND saying it is not registered on this cluster.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> Get(const std::string& name) const;
  // Get, with when and from where this cluster stored that record (empty for a record stored by
  // an xdcd that did not keep it).
  struct LearnedRecord {
    NamespaceRecord record;
    NamespaceRecordLearned learned;
  };
  [[nodiscard]] absl::StatusOr<LearnedRecord> GetLearned(const std::string& name) const;
  // The run a workflow of `ns` currently runs, or NOT_FOUND naming the workflow and namespace.
  [[nodiscard]] absl::StatusOr<std::string> CurrentRun(const NamespaceRecord& ns,
                                                       const std::string& workflow_id) const;
  [[nodiscard]] std::optional<NamespaceRecord> FindById(const std::string& id) const;
  [[nodiscard]] std::vector<NamespaceRecord> List() const;

  // Called after every stored change, outside the lock.
  void SetChangeListener(std::function<void(const NamespaceRecord&)> listener);

 private:
  // NOT_FOUND saying `name` is not registered on this cluster.
  [[nodiscard]] absl::Status NotRegistered(const std::string& name) const;
  // Maps the record's name to its id; on a clash with another id the lower id keeps the name.
  void MapName(const NamespaceRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues `write` (which carries the new record, learned now from `from`) and makes the record
  // visible.
  [[nodiscard]] absl::Status QueueRecord(StoreWrite& write, Store::WriteTicket& ticket,
                                         const std::string& from)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for a queued record write, then announces the record.
  [[nodiscard]] absl::Status WaitAndAnnounce(StoreWrite& write, Store::WriteTicket& ticket);

  Store& store_;
  const DaemonConfig& config_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, NamespaceRecord> by_id_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> id_by_name_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, NamespaceRecordLearned> learned_by_id_ ABSL_GUARDED_BY(mu_);
  std::function<void(const NamespaceRecord&)> listener_;  // set before the daemon starts
};

}  // namespace xdc
