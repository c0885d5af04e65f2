// Runs the startup check (protocol/startup_check.h, docs/control-plane.md#startup-check): until it
// knows that this cluster's store holds its latest state, writes to the namespaces active here
// are refused (retryable), so a store restored from a backup never writes again at event ids,
// failover versions and task ids its lost state already published.
//
// At Start, if a namespace active here has another member, the check waits: it reads the last
// message of every partition of our own history topic, and sends a StartupProbe on our control
// topic (again every startup_probe_interval_ms) until every such member answered with a
// StartupReport. Then it judges (JudgeStartup). Not restored: PASSED. Restored: each namespace
// active here moves to a fresh failover version (a RESTORED_STORE entry of its failover history)
// and the outbox continues above every task id anyone reported, then RESTORED. A namespace a peer
// holds at a newer version of another cluster (it moved away while our store lost that) stays
// refused until that record is merged here. An operator may lift the wait (Skip), e.g. when a
// member is gone for good.
//
// Thread-safety: thread-safe; the check runs on its own thread.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "protocol/startup_check.h"
#include "protocol/xdc.pb.h"
#include "replicator/clock.h"
#include "replicator/namespace_registry.h"
#include "replicator/tunables.h"
#include "store/store.h"

namespace xdc {

class StartupChecker {
 public:
  struct Io {
    std::function<void(ControlMessage)> send_control;  // on our control topic
    std::function<absl::StatusOr<std::vector<PublishedTail>>()> read_tails;
    std::function<void()> writes_allowed;  // called once the wait ends (PASSED, RESTORED, SKIPPED)
  };

  StartupChecker(const DaemonConfig& config, const Tunables& tunables, Store& store,
                 NamespaceRegistry& namespaces, Clock clock, Io io);
  ~StartupChecker();

  // Decides whether to wait (see above) and, if so, starts the check's thread.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // OK if a write to `ns` may be accepted as far as the check goes; else UNAVAILABLE, retryable,
  // saying what it waits for.
  [[nodiscard]] absl::Status Gate(const NamespaceRecord& ns) const ABSL_LOCKS_EXCLUDED(mu_);
  // A peer's StartupReport (ControlApplier). Reports for another start are ignored.
  void OnReport(const std::string& peer, const StartupReport& report) ABSL_LOCKS_EXCLUDED(mu_);
  // The operator lifts the wait: SKIPPED with `reason`. FAILED_PRECONDITION unless waiting.
  [[nodiscard]] absl::StatusOr<StartupCheck> Skip(const std::string& reason)
      ABSL_LOCKS_EXCLUDED(mu_);
  [[nodiscard]] StartupCheck Status() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Judges and acts on the verdict. An error (a store write) leaves the check waiting.
  [[nodiscard]] absl::Status Decide(const std::vector<StartupReport>& reports,
                                    const std::vector<PublishedTail>& tails)
      ABSL_LOCKS_EXCLUDED(mu_);
  [[nodiscard]] bool Complete() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DaemonConfig& config_;
  const Tunables& tunables_;
  Store& store_;
  NamespaceRegistry& namespaces_;
  Clock clock_;
  Io io_;
  const std::string probe_id_;  // random, per start

  mutable absl::Mutex mu_;  // Run() waits with Mutex::AwaitWithTimeout: changes under mu_ wake it
  StartupCheck check_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> awaited_ ABSL_GUARDED_BY(mu_);  // members that have not answered
  std::map<std::string, StartupReport> reports_ ABSL_GUARDED_BY(mu_);
  std::optional<std::vector<PublishedTail>> tails_ ABSL_GUARDED_BY(mu_);
  // Namespace id -> a newer version of another cluster a peer reported: refused until merged.
  std::map<std::string, int64_t> awaiting_record_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace xdc
