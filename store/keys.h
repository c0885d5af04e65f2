// Key encodings of every column family. The one place that knows the byte layout of keys.
//
// Strings are length-prefixed (4-byte big-endian length) so that no key is a prefix of another
// key's different segment; integers are 8- or 4-byte big-endian so byte order is numeric order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/xdc.pb.h"

namespace xdc::keys {

// meta CF
inline constexpr std::string_view kIdentity = "identity";
inline constexpr std::string_view kLastParkedSequence = "dlq_last_sequence";
[[nodiscard]] std::string PublishedTaskId(int32_t shard);
// The store's incarnation: incremented (synced) at every open.
inline constexpr std::string_view kIncarnation = "incarnation";
// The lowest task id the shard's outbox may assign next (raised by a startup check that found
// the store older than what it had published): "task_floor/<shard>" -> int64.
[[nodiscard]] std::string TaskIdFloor(int32_t shard);
// Clusters added to the federation online: "member/<name>" -> FederationMember.
inline constexpr std::string_view kFederationMemberPrefix = "member/";
[[nodiscard]] std::string FederationMember(std::string_view cluster_name);
// A namespace's migration backfill at its source: "backfill/<namespace id>" -> BackfillState.
inline constexpr std::string_view kBackfillPrefix = "backfill/";
[[nodiscard]] std::string Backfill(std::string_view namespace_id);
// When and from where this cluster stored a namespace's record: "learned/<namespace id>" ->
// NamespaceRecordLearned.
inline constexpr std::string_view kNamespaceLearnedPrefix = "learned/";
[[nodiscard]] std::string NamespaceLearned(std::string_view namespace_id);
// Present once the reapply_pending CF indexes every run (a store from before it is indexed once).
inline constexpr std::string_view kReapplyPendingIndexed = "reapply_pending_indexed";

// namespaces CF: namespace id -> NamespaceRecord
[[nodiscard]] std::string Namespace(std::string_view namespace_id);

// workflows CF: (namespace id, workflow id, run id) -> WorkflowMutableState
[[nodiscard]] std::string Workflow(const WorkflowKey& key);
[[nodiscard]] std::string WorkflowPrefix(std::string_view namespace_id);
// Decodes a Workflow key; false if `key` is not one.
[[nodiscard]] bool DecodeWorkflow(std::string_view key, WorkflowKey& out);

// reapply_pending CF: the Workflow key of every run whose state has reapply_pending -> ""

// current_runs CF: (namespace id, workflow id) -> run id
[[nodiscard]] std::string CurrentRun(std::string_view namespace_id, std::string_view workflow_id);

// requests CF: (namespace id, request id) -> RequestRecord
[[nodiscard]] std::string Request(std::string_view namespace_id, std::string_view request_id);

// events CF: (workflow key, event id, version) -> HistoryEvent. Every branch's events live side
// by side: (event id, version) identifies an event, so branches share their prefix uncopied.
[[nodiscard]] std::string Event(const WorkflowKey& key, int64_t event_id, int64_t version);
[[nodiscard]] std::string EventPrefix(const WorkflowKey& key);
// An exclusive upper bound of every Event key of `key`'s run (for a range delete).
[[nodiscard]] std::string EventPrefixEnd(const WorkflowKey& key);
// Decodes the (event id, version) suffix of an Event key; false if `key` is too short.
[[nodiscard]] bool DecodeEventSuffix(std::string_view key, int64_t& event_id, int64_t& version);

// outbox CF: (shard, task id) -> ReplicationTask
[[nodiscard]] std::string Outbox(int32_t shard, int64_t task_id);
[[nodiscard]] int64_t DecodeOutboxTaskId(std::string_view key);

// apply_progress CF: (source cluster, shard) -> ShardApplyProgress
[[nodiscard]] std::string ApplyProgress(std::string_view source_cluster, int32_t shard);

// dlq CF: sequence -> ParkedTask
[[nodiscard]] std::string Parked(int64_t sequence);
[[nodiscard]] int64_t DecodeParkedSequence(std::string_view key);

}  // namespace xdc::keys
