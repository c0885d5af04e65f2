#include "replicator/readiness.h"

#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace xdc {
namespace {

void AddCheck(ReadinessResponse& response, const std::string& name, const std::string& problem) {
  ReadinessCheck* check = response.add_checks();
  check->set_name(name);
  check->set_ok(problem.empty());
  check->set_detail(problem);
  if (!problem.empty()) response.set_ready(false);
}

}  // namespace

ReadinessResponse EvaluateReadiness(const StatusResponse& status, const absl::Status& kafka,
                                    double max_lag_seconds) {
  ReadinessResponse response;
  response.set_ready(true);
  AddCheck(response, "store",
           status.store_write_error().empty()
               ? ""
               : absl::StrFormat("a store write failed, so writes are refused until restart: %s "
                                 "(runbooks/store-write-failed.md)",
                                 status.store_write_error()));
  AddCheck(response, "kafka",
           kafka.ok() ? ""
                      : absl::StrFormat("Kafka at %s did not answer: %s", status.kafka_bootstrap(),
                                        kafka.ToString()));
  AddCheck(response, "appliers",
           status.halted_appliers().empty()
               ? ""
               : absl::StrFormat("%d applier(s) halted: %s (runbooks/applier-halted.md)",
                                 status.halted_appliers_size(),
                                 absl::StrJoin(status.halted_appliers(), "; ")));
  std::string behind;
  for (const ShardStatus& shard : status.shards()) {
    for (const PeerShardStatus& peer : shard.peers()) {
      if (peer.lag_seconds() > max_lag_seconds && behind.empty()) {
        behind = absl::StrFormat(
            "shard %d is %.1f s (%d tasks) behind peer %s, more than the %.0f s allowed "
            "(readyz_max_lag_seconds)",
            shard.shard(), peer.lag_seconds(), peer.lag_tasks(), peer.peer(), max_lag_seconds);
      }
    }
  }
  AddCheck(response, "caught_up", behind);
  AddCheck(response, "startup_check",
           status.startup_check().state() == StartupCheck::STATE_WAITING
               ? absl::StrFormat("writes wait for the startup check: %s have not answered "
                                 "(docs/control-plane.md#startup-check)",
                                 absl::StrJoin(status.startup_check().waiting_for(), ", "))
               : "");
  return response;
}

}  // namespace xdc
