// The chaos suite's invariant checker: after a scenario, proves through the HTTP API alone (the
// clusters may be processes) that the clusters converged and kept every promise the workload's
// ledger (chaos/workload.h) records.
//
// WaitAndCheck first waits until replication has quiesced: every cluster's /v1/status shows
// nothing left to apply from any peer, and /v1/digests are equal across clusters and unchanged
// on two consecutive polls, up to `quiesce_timeout`. Not quiescing in time is itself a violation
// ("quiesced") and the checks still run. Then it reads every run of the namespace (the union of
// the clusters' /v1/digests and the ledger's runs) from every cluster, kFetchThreads at a time,
// and checks the invariants, each reported under its name:
//
//  "converged"             every cluster has the same runs; per run the same branches (compared
//                          sorted: their order is local), the same current branch, the same
//                          digest; and the same namespace record (active cluster, version, state).
//  "acknowledged_present"  every acknowledged write is on every cluster at its (event id,
//                          version) on the current branch, carrying its request id; or it is on a
//                          losing branch, and then a signal must have a reapplied copy on the
//                          current branch (same request id, origin = the acknowledged event), and
//                          an append is lost: the failover's RPO, a violation unless
//                          `allow_lost_appends`.
//  "applied_once"          no request id twice on a run's current branch (copies included); no
//                          origin reapplied twice.
//  "one_writer_per_version" every failover version was acknowledged by at most one cluster, that
//                          cluster owns it by the namespace's failover history, and every event
//                          of every branch has a version some failover activated (when the
//                          history is complete).
//  "dlq_explained"         every cluster's DLQ is empty, or each entry's reason is allowed.
//  "quiesced"              replication quiesced within `quiesce_timeout`.
//
// A finding that is the same on several clusters is reported once, naming them all
// ("east,west"). At most kMaxListedViolationsPerInvariant violations are listed per invariant;
// `violation_counts` has them all.
//
// Thread-safety: WaitAndCheck is a free function with no shared state; call it from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "chaos/workload.h"

namespace xdc::chaos {

// Names of the invariants, as they appear in reports.
inline constexpr char kInvariantQuiesced[] = "quiesced";
inline constexpr char kInvariantConverged[] = "converged";
inline constexpr char kInvariantAcknowledgedPresent[] = "acknowledged_present";
inline constexpr char kInvariantAppliedOnce[] = "applied_once";
inline constexpr char kInvariantOneWriterPerVersion[] = "one_writer_per_version";
inline constexpr char kInvariantDlqExplained[] = "dlq_explained";

// Violations listed per invariant in a CheckResult (all are counted).
inline constexpr int kMaxListedViolationsPerInvariant = 50;
// Lost appends listed in a CheckResult (all are counted).
inline constexpr int kMaxListedLostAppends = 50;
// Runs read from the clusters concurrently (one HTTP connection per cluster each).
inline constexpr int kFetchThreads = 4;
// Between two quiesce polls.
inline constexpr absl::Duration kQuiescePollInterval = absl::Milliseconds(200);
// DLQ entries read per cluster (the API's maximum; more are counted from /v1/status).
inline constexpr int kDlqListLimit = 10000;
// Bound on one HTTP exchange of the checker.
inline constexpr absl::Duration kCheckRequestTimeout = absl::Seconds(60);

struct ClusterEndpoint {
  std::string name;
  std::string address;
};

struct CheckOptions {
  std::string namespace_name = "orders";
  // Forced-failover scenarios: acknowledged appends that ended on a losing branch are the
  // failover's RPO and are reported, not violations. Signals on a losing branch must always be
  // reapplied on the winning branch.
  bool allow_lost_appends = false;
  std::set<std::string> allowed_dlq_reasons;  // ParkReason names a scenario explains
  absl::Duration quiesce_timeout = absl::Seconds(60);
  std::string bearer_token;
};

struct Violation {
  std::string invariant;
  std::string cluster;   // one name, or several joined with ',' when the finding is the same
  std::string workflow;  // "workflow_id/run_id", or empty
  std::string detail;
};

struct CheckResult {
  bool passed() const { return violation_counts.empty(); }

  std::vector<Violation> violations;  // sorted; at most kMaxListedViolationsPerInvariant each
  std::map<std::string, int64_t> violation_counts;  // per invariant: all, listed or not

  std::string namespace_name;
  std::vector<std::string> clusters;
  bool quiesced = false;
  absl::Duration quiesce_time;  // waited for quiescence (quiesce_timeout when it did not)

  // Counted on the first cluster that holds each run.
  int64_t workflows = 0;         // runs (workflow id, run id) on any cluster
  int64_t workflows_forked = 0;  // runs with more than one branch
  int64_t events = 0;            // events on current branches
  int64_t reapplied_events = 0;  // events on current branches copied from losing branches
  int64_t acked_writes = 0;      // ledger entries
  int64_t acked_appends = 0;
  int64_t acked_signals = 0;
  int64_t appends_on_losing_branches = 0;  // the RPO: acknowledged appends lost
  int64_t signals_on_losing_branches = 0;
  int64_t signals_reapplied = 0;               // of those, with their copy on the current branch
  std::vector<std::string> lost_appends;       // "workflow/run event E vN on C request R", capped
  std::map<std::string, int64_t> dlq_entries;  // per cluster
  std::map<int64_t, std::string> version_owners;  // from the failover history

  std::string ToJson() const;   // stable field names, for the JSON report
  std::string Summary() const;  // a readable multi-line account
};

// See the file comment. An error only when the check could not be made at all (no clusters, a
// cluster unreachable or answering garbage once quiesced); findings are violations.
[[nodiscard]] absl::StatusOr<CheckResult> WaitAndCheck(const std::vector<ClusterEndpoint>& clusters,
                                                       const std::vector<AckedWrite>& ledger,
                                                       const CheckOptions& options);

}  // namespace xdc::chaos
