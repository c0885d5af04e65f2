#include "replicator/xdcctl_cluster.h"

#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "protocol/federation.h"
#include "protocol/message_codec.h"
#include "protocol/xdc.pb.h"
#include "replicator/xdcctl_common.h"

namespace xdc {
namespace {

// How long `migration start` waits for the target to list itself as a member of the namespace
// (the record travels over the control topic), and how often it looks.
constexpr auto kTargetMemberWait = std::chrono::seconds(30);
constexpr auto kTargetMemberPoll = std::chrono::milliseconds(200);

std::string Flag(const CtlCommand& command, const std::string& name) {
  auto it = command.flags.find(name);
  return it == command.flags.end() || it->second.empty() ? "" : it->second.back();
}

int UsageError(const std::string& problem) {
  std::fprintf(stderr, "xdcctl: %s (see xdcctl --help)\n", problem.c_str());
  return kExitUsage;
}

void PrintClusters(const ListClustersResponse& list) {
  std::printf("federation seen from %s: failover_version_increment %lld, shard_count %d\n",
              list.cluster().c_str(), static_cast<long long>(list.failover_version_increment()),
              list.shard_count());
  for (const ClusterMember& member : list.clusters()) {
    std::printf("  %-20s initial_failover_version %-4lld %s%s\n", member.name().c_str(),
                static_cast<long long>(member.initial_failover_version()),
                member.from_config() ? "config file" : "added online",
                member.self() ? " (this cluster)" : "");
  }
}

// The AddClusterRequest for `cluster add`: from --from (the new daemon describes itself) or
// from NAME and the flags.
absl::StatusOr<AddClusterRequest> AddRequestOf(const CtlCommand& command) {
  AddClusterRequest request;
  if (const std::string from = Flag(command, "from"); !from.empty()) {
    HttpClient joining(from);
    ListClustersResponse self_view;
    if (absl::Status s = joining.Call("GET", "/v1/clusters", nullptr, self_view); !s.ok()) {
      return absl::UnavailableError(absl::StrFormat(
          "asking the new cluster at %s to describe itself: %s", from, std::string(s.message())));
    }
    for (const ClusterMember& member : self_view.clusters()) {
      if (!member.self()) continue;
      request.set_name(member.name());
      request.set_initial_failover_version(member.initial_failover_version());
    }
    request.set_failover_version_increment(self_view.failover_version_increment());
    request.set_shard_count(self_view.shard_count());
    return request;
  }
  if (command.positional.size() < 3) {
    return absl::InvalidArgumentError(
        "cluster add needs NAME --initial-failover-version V --failover-version-increment N "
        "--shard-count S, or --from HOST:PORT (the new cluster's API)");
  }
  request.set_name(command.positional[2]);
  int64_t version = 0;
  int64_t increment = 0;
  int32_t shards = 0;
  if (!absl::SimpleAtoi(Flag(command, "initial-failover-version"), &version) ||
      !absl::SimpleAtoi(Flag(command, "failover-version-increment"), &increment) ||
      !absl::SimpleAtoi(Flag(command, "shard-count"), &shards)) {
    return absl::InvalidArgumentError(
        "cluster add NAME needs numbers for --initial-failover-version, "
        "--failover-version-increment and --shard-count (the new cluster's config)");
  }
  request.set_initial_failover_version(version);
  request.set_failover_version_increment(increment);
  request.set_shard_count(shards);
  return request;
}

std::string PhaseName(BackfillPhase phase) {
  switch (phase) {
    case BACKFILL_PHASE_RUNNING:
      return "running";
    case BACKFILL_PHASE_COMPLETED:
      return "completed";
    case BACKFILL_PHASE_ABORTED:
      return "aborted";
    default:
      return "unknown";
  }
}

void PrintBackfill(const MigrationStatusResponse& status) {
  const BackfillState& state = status.backfill();
  const double percent =
      status.workflows_total() > 0
          ? 100.0 * static_cast<double>(status.workflows_done()) / status.workflows_total()
          : 100.0;
  std::printf("namespace %s -> %s: backfill %s, %lld / %lld workflow runs (%.1f%%)\n",
              state.namespace_name().c_str(), state.target_cluster().c_str(),
              PhaseName(state.phase()).c_str(), static_cast<long long>(status.workflows_done()),
              static_cast<long long>(status.workflows_total()), percent);
  std::printf(
      "  rate %.0f runs/s (limit %lld runs/s), ETA %s, resumed %lld times\n",
      status.rate_workflows_per_second(), static_cast<long long>(state.rate_workflows_per_second()),
      status.eta_seconds() < 0 ? "unknown" : absl::StrCat(status.eta_seconds(), " s").c_str(),
      static_cast<long long>(state.resumed_count()));
  if (!state.error().empty()) {
    std::printf("  last step failed (retrying): %s\n", state.error().c_str());
  }
  for (const BackfillShardProgress& shard : state.shards()) {
    std::printf("  shard %-4d %8lld / %-8lld runs  %10lld events  next task %lld\n", shard.shard(),
                static_cast<long long>(shard.workflows_done()),
                static_cast<long long>(shard.workflows_total()),
                static_cast<long long>(shard.events_published()),
                static_cast<long long>(shard.next_task_id()));
  }
}

// Waits until the cluster at `address` lists `target` as a member of namespace `ns`: only then
// does the backfill start (docs/migration.md: a live task the target skipped while it did not
// know it was a member is then covered by the backfill).
absl::Status WaitForTargetMembership(const std::string& address, const std::string& ns,
                                     const std::string& target) {
  HttpClient client(address);
  const auto deadline = std::chrono::steady_clock::now() + kTargetMemberWait;
  std::string last;
  while (true) {
    NamespaceRecord record;
    absl::Status s = client.Call("GET", "/v1/namespaces/" + ns, nullptr, record);
    if (s.ok() && IsNamespaceMember(record, target)) return absl::OkStatus();
    last = s.ok()
               ? absl::StrFormat("it lists the members %s", absl::StrJoin(record.clusters(), ","))
               : std::string(s.message());
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(kTargetMemberPoll);
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "the target at %s does not list '%s' as a member of namespace '%s' yet (%s): add it with "
      "`xdcctl namespace add-cluster %s --cluster %s` on the active cluster, check the target "
      "replicates from it (xdcctl status), then start again",
      address, target, ns, last, ns, target));
}

}  // namespace

bool IsBackfillVerb(const std::string& verb) {
  return verb == "start" || verb == "status" || verb == "abort";
}

bool IsNamespaceMembersVerb(const std::string& verb) {
  return verb == "add-cluster" || verb == "remove-cluster";
}

int RunClusterCommand(HttpClient& client, const CtlCommand& command) {
  const std::string verb = command.positional.size() > 1 ? command.positional[1] : "";
  ListClustersResponse list;
  if (verb == "list") {
    if (absl::Status s = client.Call("GET", "/v1/clusters", nullptr, list); !s.ok()) {
      return Fail(s);
    }
  } else if (verb == "add") {
    absl::StatusOr<AddClusterRequest> request = AddRequestOf(command);
    if (absl::IsInvalidArgument(request.status())) {
      return UsageError(std::string(request.status().message()));
    }
    if (!request.ok()) return Fail(request.status());
    if (absl::Status s = client.Call("POST", "/v1/clusters", &*request, list); !s.ok()) {
      return Fail(s);
    }
  } else if (verb == "remove") {
    if (command.positional.size() < 3) return UsageError("cluster remove needs a NAME");
    if (absl::Status s =
            client.Call("POST", "/v1/clusters/" + command.positional[2] + "/remove", nullptr, list);
        !s.ok()) {
      return Fail(s);
    }
  } else {
    return UsageError("cluster needs list, add or remove");
  }
  command.json ? PrintJson(list) : PrintClusters(list);
  return 0;
}

int RunNamespaceMembersCommand(HttpClient& client, const CtlCommand& command) {
  const std::string verb = command.positional[1];
  if (command.positional.size() < 3) return UsageError("namespace " + verb + " needs a NAME");
  const std::string cluster = Flag(command, "cluster");
  if (cluster.empty()) return UsageError("namespace " + verb + " needs --cluster CLUSTER");
  NamespaceClustersRequest request;
  verb == "add-cluster" ? request.set_add(cluster) : request.set_remove(cluster);
  NamespaceRecord record;
  if (absl::Status s = client.Call("POST", "/v1/namespaces/" + command.positional[2] + "/clusters",
                                   &request, record);
      !s.ok()) {
    return Fail(s);
  }
  if (command.json) {
    PrintJson(record);
  } else {
    std::printf("namespace %s: members %s (config_version %lld), active on %s\n",
                record.name().c_str(), absl::StrJoin(record.clusters(), ",").c_str(),
                static_cast<long long>(record.config_version()), record.active_cluster().c_str());
    if (!record.members_awaiting_history().empty()) {
      std::printf(
          "awaiting history: %s (a graceful handover to them is refused until a content "
          "verification: backfill, then xdcctl migration cutover)\n",
          absl::StrJoin(record.members_awaiting_history(), ",").c_str());
    }
  }
  return 0;
}

int RunBackfillCommand(HttpClient& client, const CtlCommand& command) {
  const std::string verb = command.positional[1];
  const std::string ns = Flag(command, "namespace");
  if (ns.empty()) return UsageError("migration " + verb + " needs --namespace NS");
  MigrationStatusResponse status;
  if (verb == "start") {
    StartMigrationRequest request;
    request.set_target_cluster(Flag(command, "to"));
    if (request.target_cluster().empty()) return UsageError("migration start needs --to CLUSTER");
    if (const std::string rate = Flag(command, "rate"); !rate.empty()) {
      int64_t value = 0;
      if (!absl::SimpleAtoi(rate, &value) || value < 1) {
        return UsageError("--rate takes workflow runs per second, a whole number >= 1");
      }
      request.set_rate_workflows_per_second(value);
    }
    const std::string target_address = Flag(command, "target-address");
    if (target_address.empty()) {
      return UsageError(
          "migration start needs --target-address HOST:PORT (the target's API): it checks the "
          "target knows it is a member before the backfill starts");
    }
    if (absl::Status s = WaitForTargetMembership(target_address, ns, request.target_cluster());
        !s.ok()) {
      return Fail(s);
    }
    if (absl::Status s =
            client.Call("POST", "/v1/namespaces/" + ns + "/backfill", &request, status);
        !s.ok()) {
      return Fail(s);
    }
  } else if (verb == "status") {
    if (absl::Status s = client.Call("GET", "/v1/namespaces/" + ns + "/backfill", nullptr, status);
        !s.ok()) {
      return Fail(s);
    }
  } else {
    if (absl::Status s =
            client.Call("POST", "/v1/namespaces/" + ns + "/backfill/abort", nullptr, status);
        !s.ok()) {
      return Fail(s);
    }
  }
  command.json ? PrintJson(status) : PrintBackfill(status);
  return 0;
}

}  // namespace xdc
