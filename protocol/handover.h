// The namespace control plane's state machine: graceful handover, cancel, forced failover, and
// the order of namespace records. Pure functions; the runtime that drives them is
// replicator/handover_coordinator.h, and models/handover.pml is the model spin checks.
//
// Records. The failover part of a record (active cluster, version, state, handover, history) is
// ordered by (failover_version, state_sequence). Only the owner of a failover version writes
// records at that version, so the sequence is a counter of one writer and no clock is needed.
//
// Graceful handover A -> B.
//   1. A (active) enters HANDOVER, proposing p = the next version B owns above every version
//      proposed before; in the same write it appends a marker to every shard's stream. From
//      then on A refuses writes.
//   2. B collects the markers. It activates at p only when it has the marker of every shard, its
//      apply progress from every other cluster reaches what A had applied (the markers carry A's
//      shard version vector), nothing of the namespace waits in its DLQ, and no newer record
//      superseded A's. Then B holds every write A acknowledged, and its writes extend them.
//   3. The target decides. A cancel (from the operator, or A's deadline) is a request to B: B
//      cancels p if it has not activated, and answers with its decision. A leaves HANDOVER only
//      when it hears B's decision (B's record at p, or "cancelled p"), or on an operator's forced
//      failover. Each proposal is decided once; decided proposals ignore later markers, and a
//      cancel of one is answered with the stored decision, addressed to whoever asks.
//
// Forced failover to C: C takes the next version it owns above everything it knows (proposals
// included) and activates at once. Divergent writes are resolved per workflow afterwards.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"

namespace xdc {

inline constexpr int kMaxFailoverHistory = 32;  // entries kept in a namespace record
// Cancellations a target remembers per namespace (activations are never forgotten).
inline constexpr int kMaxHandoverDecisions = 64;

// True when `a`'s failover part is newer than `b`'s: higher (failover_version, state_sequence).
[[nodiscard]] bool FailoverPartNewer(const NamespaceRecord& a, const NamespaceRecord& b);

// "graceful", "forced" or "cancelled" (the `kind` of metrics and of `xdcctl namespace history`);
// nullptr for an unknown kind.
[[nodiscard]] const char* FailoverKindName(FailoverKind kind);

// Appends `event`, keeping the newest kMaxFailoverHistory entries.
void AppendFailoverEvent(NamespaceRecord& record, FailoverEvent event);

// What the version layout of the federation is: every cluster's initial version, and the step.
struct VersionLayout {
  const google::protobuf::RepeatedPtrField<ClusterConfig>* clusters = nullptr;
  int64_t increment = 0;
};

// --- source (the active cluster) ---

// A's record in HANDOVER to `target`. FAILED_PRECONDITION (naming what to do) unless `self` is
// active in state ACTIVE and `target` is another member cluster.
[[nodiscard]] absl::StatusOr<NamespaceRecord> BeginHandover(
    const NamespaceRecord& current, const std::string& self, const std::string& target,
    const VersionLayout& layout, int64_t now_micros, int64_t deadline_micros);

// The marker for one shard.
[[nodiscard]] HandoverMarker MakeHandoverMarker(const NamespaceRecord& handover_record,
                                                std::vector<SourceWatermark> applied);

// A's record after asking the target to cancel for `reason` (a new state of the same version, so
// the request and its reason survive a restart and replicate). nullopt if not in HANDOVER or
// already asked.
[[nodiscard]] std::optional<NamespaceRecord> RequestCancel(const NamespaceRecord& current,
                                                           const std::string& self,
                                                           const std::string& reason);

// A's record after the target's decision: back to ACTIVE at the same version when the target
// cancelled A's current proposal and addressed the decision to A (`source_cluster == self`).
// nullopt when the decision does not concern the current state (another cluster's, duplicate,
// stale, or ACTIVATED: B's own record carries that).
[[nodiscard]] std::optional<NamespaceRecord> ApplyDecisionAtSource(const NamespaceRecord& current,
                                                                   const std::string& self,
                                                                   const HandoverDecision& decision,
                                                                   int64_t now_micros);

// --- forced failover ---

// `self`'s record after a forced failover to it: the next version it owns above the record's
// version, every proposal and `decided_version`. `old_active_last_heard_micros` (0: never) is
// when this cluster last applied a task of the old active, for the RTO estimate.
[[nodiscard]] absl::StatusOr<NamespaceRecord> ForceFailover(
    const NamespaceRecord& current, const std::string& self, const VersionLayout& layout,
    int64_t decided_version, int64_t now_micros, int64_t old_active_last_heard_micros);

// `self`'s record after its startup check found its store older than what it had published
// (protocol/startup_check.h): the next version it owns above both the record's and
// `version_floor` (every version anyone reported), with a FAILOVER_KIND_RESTORED_STORE entry
// whose reason is `why`. FAILED_PRECONDITION unless `self` is the record's active cluster.
[[nodiscard]] absl::StatusOr<NamespaceRecord> MoveToFreshVersion(
    const NamespaceRecord& current, const std::string& self, const VersionLayout& layout,
    int64_t version_floor, int64_t now_micros, const std::string& why);

// --- target ---

enum class MarkerEffect {
  kIgnored,      // not for us, its proposal is decided or older than the pending one, or another
                 // source proposed the same version from an older one
  kNewProposal,  // the first marker of a newer proposal (or of the same version from a source
                 // at a newer version): replaces the pending one
  kShardSeen,    // one more shard of the pending proposal
  kDuplicate,    // this shard's marker of the pending proposal was seen before
};

// Folds a marker that arrived on `shard` of `source`'s stream into the target's state.
[[nodiscard]] MarkerEffect ApplyMarker(HandoverTargetState& state, const std::string& self,
                                       const std::string& source, int32_t shard,
                                       const HandoverMarker& marker);

// True when a proposal is pending (seen, not decided).
[[nodiscard]] bool HasPendingProposal(const HandoverTargetState& state);

// What the target's apply progress looks like, as the activation check needs it.
using AppliedTasksFn =
    std::function<absl::StatusOr<TaskSequence>(const std::string& source, int32_t shard)>;

// Why the pending proposal cannot activate yet, one line each; empty when it can: a shard whose
// marker has not arrived, missing tasks of the source, or a shard where our progress from another
// cluster is behind what the source had applied. (The DLQ is I/O: the caller checks it.)
// `self` is the target: its own stream, if a marker lists it, needs no applying.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> ActivationBlockers(
    const HandoverTargetState& state, const std::string& self, int32_t shard_count,
    const AppliedTasksFn& applied);

// True when the local record already moved past the proposal's source version (a forced
// failover superseded the handover): the proposal must be cancelled, not activated.
[[nodiscard]] bool ProposalSuperseded(const HandoverTargetState& state,
                                      const NamespaceRecord& local);

// Records the decision for the pending proposal in `state`; returns the decision to announce.
HandoverDecision DecidePending(HandoverTargetState& state, HandoverOutcome outcome,
                               const std::string& reason, int64_t now_micros);

// B's record after activating the pending proposal of `state`.
[[nodiscard]] NamespaceRecord ActivatedRecord(const NamespaceRecord& local,
                                              const HandoverTargetState& state,
                                              const std::string& self, int64_t now_micros);

// The target's answer to a cancel of `proposed_version` from `source`: the decision already
// taken, or a new CANCELLED decision (recorded in `state`; `changed` tells the caller to store
// it). The answer is always addressed to `source`, the cluster that asks, also when the version
// was decided for another source's proposal (after a forced failover two sources can propose
// the same version): that cluster is the one waiting for it. models/handover.pml, step 7.
[[nodiscard]] HandoverDecision DecideCancel(HandoverTargetState& state,
                                            const HandoverCancel& cancel, const std::string& source,
                                            int64_t now_micros, bool& changed);

}  // namespace xdc
