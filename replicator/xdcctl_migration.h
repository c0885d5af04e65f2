// xdcctl migration verify | cutover | rollback (docs/migration.md, runbooks/migration.md).
//
//   verify    compares the namespace's content on --source and --target, shard by shard, with the
//             digest trees (GET /v1/digest-tree, /v1/digest-leaves); --repair has the source
//             resend its whole copy of each differing run (POST /v1/migration/repair) and waits
//             until the target matches
//   cutover   graceful handover source -> target, only once verify is clean and the target's
//             lag from the source is under --max-lag-seconds
//   rollback  the same, target -> source
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"
#include "replicator/xdcctl_common.h"

namespace xdc {

// Exit statuses of the migration commands, besides 0 (success), kExitFailed and kExitUsage.
inline constexpr int kExitDifferent = 3;  // verify: the clusters differ
inline constexpr int kExitRefused = 4;    // cutover/rollback: a precondition does not hold

// True for the verbs this file implements ("verify", "cutover", "rollback").
[[nodiscard]] bool IsMigrationVerifyVerb(const std::string& verb);

// One verification pass over every shard (digest trees, then the differing buckets' runs): what
// `migration verify` and `compare` run. An error only when a cluster cannot be identified or the
// shard counts differ; a shard that cannot be compared is an error inside the report.
[[nodiscard]] absl::StatusOr<MigrationVerifyReport> VerifyContent(HttpClient& source,
                                                                  HttpClient& target,
                                                                  const std::string& ns);

// "shard 2 bucket 51  order-17 run 5012…: missing on target: only on source (...)".
[[nodiscard]] std::string DescribeDifference(const RunDifference& difference);

// Runs `xdcctl migration VERB ...`; args.positional[0] is "migration". Returns the exit status.
int RunMigrationCommand(const Args& args, const std::string& token, bool json);

}  // namespace xdc
