// xdcctl: every xdcd API operation from the shell. See `xdcctl --help`.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "protocol/handover.h"
#include "protocol/version_history.h"
#include "protocol/xdc.pb.h"
#include "replicator/api_errors.h"
#include "replicator/cli_flags.h"
#include "replicator/http_client.h"
#include "replicator/xdcctl_cluster.h"
#include "replicator/xdcctl_commands.h"
#include "replicator/xdcctl_common.h"
#include "replicator/xdcctl_load.h"
#include "replicator/xdcctl_migration.h"

namespace xdc {
namespace {

constexpr const char* kDefaultAddress = "127.0.0.1:7233";
constexpr int kComparePollMs = 200;

int Usage(const std::string& problem) {
  std::fprintf(stderr, "xdcctl: %s\n\n%s", problem.c_str(), XdcctlUsage().c_str());
  return kExitUsage;
}

std::string Require(const Args& args, const std::string& flag, std::string& missing) {
  std::string value = args.Get(flag);
  if (value.empty() && missing.empty()) missing = "--" + flag + " is required";
  return value;
}

void PrintNamespace(const NamespaceRecord& ns) {
  std::printf("%-20s id=%s active=%s failover_version=%lld state=%s clusters=%s\n",
              ns.name().c_str(), ns.id().c_str(), ns.active_cluster().c_str(),
              static_cast<long long>(ns.failover_version()),
              NamespaceState_Name(ns.state()).c_str(), absl::StrJoin(ns.clusters(), ",").c_str());
}

std::string FormatMicros(int64_t unix_micros) {
  if (unix_micros == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMicros(unix_micros),
                          absl::UTCTimeZone());
}

// The failover kind's name, "?" for an unknown one.
const char* KindName(FailoverKind kind) {
  const char* name = FailoverKindName(kind);
  return name != nullptr ? name : "?";
}

// The failover history with each failover's damage (RPO) and refused-writes time (RTO).
void PrintFailoverHistory(const DescribeNamespaceResponse& response) {
  const NamespaceRecord& ns = response.namespace_();
  if (ns.failover_history_size() == 0) {
    std::printf("no failovers of %s yet\n", ns.name().c_str());
    return;
  }
  std::printf("failover history of %s (oldest first):\n", ns.name().c_str());
  std::printf("  %-9s %-20s %-13s %-24s %12s %6s %6s %9s %7s\n", "KIND", "FROM->TO", "VERSION",
              "COMPLETED", "REFUSED(s)", "FORKED", "LOST", "REAPPLIED", "DROPPED");
  for (int i = 0; i < ns.failover_history_size(); ++i) {
    const FailoverEvent& event = ns.failover_history(i);
    FailoverDamage damage;
    if (i < response.damage_size()) damage = response.damage(i);
    std::printf("  %-9s %-20s %-13s %-24s %12.3f %6lld %6lld %9lld %7lld\n", KindName(event.kind()),
                absl::StrCat(event.from_cluster(), "->", event.to_cluster()).c_str(),
                absl::StrCat(event.from_version(), "->", event.failover_version()).c_str(),
                FormatMicros(event.completed_unix_micros()).c_str(),
                static_cast<double>(event.writes_refused_micros()) / 1e6,
                static_cast<long long>(damage.workflows_forked()),
                static_cast<long long>(damage.events_on_losing_branches()),
                static_cast<long long>(damage.events_reapplied()),
                static_cast<long long>(damage.reapplicable_not_reapplied()));
    if (!event.reason().empty()) std::printf("            reason: %s\n", event.reason().c_str());
  }
  std::printf(
      "REFUSED: how long no cluster accepted writes (forced: since the old active was last "
      "heard from). LOST: events left on losing branches; REAPPLIED: of those, signals, cancels "
      "and terminations copied to the winning branch; DROPPED: ones a closed run could not "
      "take.\n");
}

int Namespace(HttpClient& client, const Args& args, bool json) {
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "";
  if (verb == "register") {
    if (args.positional.size() < 3) return Usage("namespace register needs a NAME");
    RegisterNamespaceRequest request;
    request.set_name(args.positional[2]);
    for (absl::string_view c : absl::StrSplit(args.Get("clusters"), ',', absl::SkipEmpty())) {
      request.add_clusters(std::string(c));
    }
    request.set_active_cluster(args.Get("active"));
    if (request.clusters().empty() || request.active_cluster().empty()) {
      return Usage("namespace register needs --clusters and --active");
    }
    NamespaceRecord record;
    if (absl::Status s = client.Call("POST", "/v1/namespaces", &request, record); !s.ok()) {
      return Fail(s);
    }
    json ? PrintJson(record) : PrintNamespace(record);
    return 0;
  }
  if (verb == "list") {
    ListNamespacesResponse response;
    if (absl::Status s = client.Call("GET", "/v1/namespaces", nullptr, response); !s.ok()) {
      return Fail(s);
    }
    if (json) {
      PrintJson(response);
    } else {
      for (const NamespaceRecord& ns : response.namespaces()) PrintNamespace(ns);
    }
    return 0;
  }
  if (verb == "get") {
    if (args.positional.size() < 3) return Usage("namespace get needs a NAME");
    NamespaceRecord record;
    if (absl::Status s =
            client.Call("GET", "/v1/namespaces/" + args.positional[2], nullptr, record);
        !s.ok()) {
      return Fail(s);
    }
    json ? PrintJson(record) : PrintNamespace(record);
    return 0;
  }
  if (verb == "failover") {
    if (args.positional.size() < 3) return Usage("namespace failover needs a NAME");
    FailoverRequest request;
    request.set_target_cluster(args.Get("to"));
    request.set_force(args.Has("force"));
    if (request.target_cluster().empty()) return Usage("namespace failover needs --to CLUSTER");
    absl::Duration timeout = absl::ZeroDuration();
    if (args.Has("timeout")) {
      if (request.force()) return Usage("--timeout is for a graceful handover, not with --force");
      if (!absl::ParseDuration(args.Get("timeout"), &timeout) || timeout <= absl::ZeroDuration()) {
        return Usage("--timeout takes a duration such as 30s, 500ms or 2m");
      }
      request.set_timeout_ms(absl::ToInt64Milliseconds(timeout));
    }
    NamespaceRecord record;
    if (absl::Status s = client.Call("POST", "/v1/namespaces/" + args.positional[2] + "/failover",
                                     &request, record);
        !s.ok()) {
      return Fail(s);
    }
    if (request.force() || args.Has("no-wait")) {
      json ? PrintJson(record) : PrintNamespace(record);
      return 0;
    }
    // The source decides nothing alone: wait for the target's decision to reach it, a little
    // longer than its deadline (after which it asks the target to cancel).
    const int64_t deadline_ms =
        (record.handover().deadline_unix_micros() - record.handover().started_unix_micros()) / 1000;
    return WaitForHandover(client, args.positional[2], record,
                           absl::Milliseconds(deadline_ms) + kHandoverAnswerGrace,
                           /*cancelling=*/false, json);
  }
  if (verb == "cancel") {
    if (args.positional.size() < 3) return Usage("namespace cancel needs a NAME");
    CancelHandoverRequest request;
    request.set_reason(args.Get("reason"));
    NamespaceRecord record;
    if (absl::Status s = client.Call(
            "POST", "/v1/namespaces/" + args.positional[2] + "/cancel-handover", &request, record);
        !s.ok()) {
      return Fail(s);
    }
    if (args.Has("no-wait") || record.state() != NAMESPACE_STATE_HANDOVER) {
      json ? PrintJson(record) : PrintNamespace(record);
      return 0;
    }
    return WaitForHandover(client, args.positional[2], record, kHandoverAnswerGrace,
                           /*cancelling=*/true, json);
  }
  if (verb == "describe" || verb == "history") {
    if (args.positional.size() < 3) return Usage("namespace " + verb + " needs a NAME");
    DescribeNamespaceResponse response;
    if (absl::Status s = client.Call("GET", "/v1/namespaces/" + args.positional[2] + "/describe",
                                     nullptr, response);
        !s.ok()) {
      return Fail(s);
    }
    if (json) {
      PrintJson(response);
      return 0;
    }
    if (verb == "describe") {
      PrintNamespace(response.namespace_());
      if (response.record_learned_unix_micros() > 0) {
        std::printf("  record learned at %s from %s\n",
                    FormatMicros(response.record_learned_unix_micros()).c_str(),
                    response.record_learned_from().c_str());
      } else {
        std::printf("  record learned at: not known (stored by an xdcd that did not keep it)\n");
      }
      for (const std::string& line : response.waiting_for()) {
        std::printf("  waiting for: %s\n", line.c_str());
      }
    }
    PrintFailoverHistory(response);
    return 0;
  }
  return Usage("namespace needs register, list, get, describe, history, failover or cancel");
}

int PrintAppend(const AppendResponse& response, bool json) {
  if (json) {
    PrintJson(response);
  } else {
    std::printf("%s events [%lld, %lld) to run %s at version %lld%s\n",
                response.replayed() ? "already appended" : "appended",
                static_cast<long long>(response.first_event_id()),
                static_cast<long long>(response.next_event_id()), response.run_id().c_str(),
                static_cast<long long>(response.version()),
                response.replayed() ? " (a retry of this request id: nothing written now)" : "");
  }
  return 0;
}

int Append(HttpClient& client, const Args& args, bool json) {
  std::string missing;
  AppendRequest request;
  request.set_namespace_(Require(args, "namespace", missing));
  request.set_workflow_id(Require(args, "workflow-id", missing));
  request.set_run_id(args.Get("run-id"));
  request.set_request_id(args.Get("request-id"));
  int64_t expected = 0;
  if (!absl::SimpleAtoi(Require(args, "expected-next-event-id", missing), &expected) &&
      missing.empty()) {
    missing = "--expected-next-event-id must be a number";
  }
  request.set_expected_next_event_id(expected);
  auto events = args.flags.find("event");
  if (events == args.flags.end() && missing.empty()) missing = "at least one --event is required";
  if (!missing.empty()) return Usage(missing);
  for (const std::string& spec : events->second) {
    const size_t eq = spec.find('=');
    EventType type;
    if (!EventType_Parse(absl::AsciiStrToUpper(spec.substr(0, eq)), &type)) {
      return Usage(absl::StrFormat("unknown event type '%s'", spec.substr(0, eq)));
    }
    NewEvent* event = request.add_events();
    event->set_event_type(type);
    if (eq != std::string::npos) event->set_attributes(spec.substr(eq + 1));
  }
  AppendResponse response;
  if (absl::Status s = client.Call("POST", "/v1/append", &request, response); !s.ok()) {
    return Fail(s);
  }
  return PrintAppend(response, json);
}

int Signal(HttpClient& client, const Args& args, bool json) {
  std::string missing;
  SignalRequest request;
  request.set_namespace_(Require(args, "namespace", missing));
  request.set_workflow_id(Require(args, "workflow-id", missing));
  request.set_signal_name(Require(args, "name", missing));
  request.set_run_id(args.Get("run-id"));
  request.set_input(args.Get("input"));
  request.set_request_id(args.Get("request-id"));
  if (!missing.empty()) return Usage(missing);
  AppendResponse response;
  if (absl::Status s = client.Call("POST", "/v1/signal", &request, response); !s.ok()) {
    return Fail(s);
  }
  return PrintAppend(response, json);
}

// "shares events 1-K with the current branch" for a branch that is not current.
std::string SharedWithCurrent(const VersionHistory& branch, const VersionHistories& histories) {
  const VersionHistory* current = CurrentBranch(histories);
  if (current == nullptr) return "";
  absl::StatusOr<VersionHistoryItem> lca = FindLowestCommonAncestor(branch, *current);
  if (!lca.ok()) return "shares no event with the current branch";
  return absl::StrFormat("shares events 1-%d with the current branch", lca->event_id());
}

// One line per branch: its items, which one is current and, for the others, the prefix they
// share with it.
void PrintBranches(const VersionHistories& histories) {
  for (int i = 0; i < histories.histories_size(); ++i) {
    const VersionHistory& branch = histories.histories(i);
    std::vector<std::string> items;
    for (const VersionHistoryItem& item : branch.items()) {
      items.push_back(absl::StrFormat("(event %d, version %d)", item.event_id(), item.version()));
    }
    const bool current = i == histories.current_index();
    std::printf("branch %d%s: %s%s\n", i, current ? " (current)" : "",
                absl::StrJoin(items, " ").c_str(),
                current ? "" : absl::StrCat("; ", SharedWithCurrent(branch, histories)).c_str());
  }
}

int History(HttpClient& client, const Args& args, bool json) {
  std::string missing;
  std::map<std::string, std::string> params = {
      {"namespace", Require(args, "namespace", missing)},
      {"workflow_id", Require(args, "workflow-id", missing)}};
  if (!missing.empty()) return Usage(missing);
  if (args.Has("run-id")) params["run_id"] = args.Get("run-id");
  const bool branches_only = args.Has("branches");
  if (args.Has("branch")) {
    if (branches_only) return Usage("give --branch N or --branches, not both");
    int32_t branch = 0;
    if (!absl::SimpleAtoi(args.Get("branch"), &branch) || branch < 0) {
      return Usage("--branch takes a branch index (0, 1, ...): see the branches with --branches");
    }
    params["branch"] = absl::StrCat(branch);
  }
  GetHistoryResponse response;
  if (absl::Status s = client.Call("GET", "/v1/history" + Query(params), nullptr, response);
      !s.ok()) {
    return Fail(s);
  }
  if (json) {
    PrintJson(response);
    return 0;
  }
  std::printf("workflow %s run %s: %s, next event %lld, digest %s\n",
              response.workflow().workflow_id().c_str(), response.workflow().run_id().c_str(),
              WorkflowStatus_Name(response.status()).c_str(),
              static_cast<long long>(response.next_event_id()), response.digest().c_str());
  PrintBranches(response.version_histories());
  if (branches_only) return 0;
  if (response.current_branch()) {
    std::printf("events of branch %d (current):\n", response.branch());
  } else {
    const int64_t shared = response.shared_with_current_through_event_id();
    const int64_t last = response.events_size();
    std::printf("events of branch %d (not current): %s; %s\n", response.branch(),
                shared > 0 ? absl::StrFormat("1-%d shared with the current branch", shared).c_str()
                           : "none shared with the current branch",
                shared < last ? absl::StrFormat("%d-%d its own", shared + 1, last).c_str()
                              : "none its own");
  }
  for (const HistoryEvent& event : response.events()) {
    const std::string origin =
        event.has_reapplied_from()
            ? absl::StrFormat("  reapplied from event %d version %d",
                              event.reapplied_from().event_id(), event.reapplied_from().version())
            : "";
    std::printf("  %4lld  v%-4lld %-36s %zu bytes%s\n", static_cast<long long>(event.event_id()),
                static_cast<long long>(event.version()), EventType_Name(event.event_type()).c_str(),
                event.attributes().size(), origin.c_str());
  }
  return 0;
}

absl::StatusOr<ListDigestsResponse> FetchDigests(HttpClient& client, const std::string& ns) {
  ListDigestsResponse response;
  if (absl::Status s =
          client.Call("GET", "/v1/digests" + Query({{"namespace", ns}}), nullptr, response);
      !s.ok()) {
    return s;
  }
  return response;
}

int Digests(HttpClient& client, const Args& args, bool json) {
  std::string missing;
  const std::string ns = Require(args, "namespace", missing);
  if (!missing.empty()) return Usage(missing);
  absl::StatusOr<ListDigestsResponse> response = FetchDigests(client, ns);
  if (!response.ok()) return Fail(response.status());
  if (json) {
    PrintJson(*response);
    return 0;
  }
  for (const WorkflowDigest& d : response->workflows()) {
    std::printf("%-24s %s next=%-5lld %s\n", d.workflow_id().c_str(), d.run_id().c_str(),
                static_cast<long long>(d.next_event_id()), d.digest().c_str());
  }
  std::printf("%d workflows\n", response->workflows_size());
  return 0;
}

// One line on the startup check, unless it had nothing to do.
void PrintStartupCheck(const StartupCheck& check) {
  if (check.state() == StartupCheck::STATE_NOT_NEEDED ||
      check.state() == StartupCheck::STATE_UNSPECIFIED) {
    return;
  }
  std::string state = StartupCheck::State_Name(check.state()).substr(std::string("STATE_").size());
  absl::AsciiStrToLower(&state);
  if (check.state() == StartupCheck::STATE_WAITING) {
    std::printf(
        "startup check (store incarnation %lld): WAITING for %s; writes to namespaces active "
        "here are refused until they answer (xdcctl startup-check skip --reason TEXT lifts it)\n",
        static_cast<long long>(check.incarnation()),
        absl::StrJoin(check.waiting_for(), ", ").c_str());
    return;
  }
  std::printf("startup check (store incarnation %lld): %s: %s\n",
              static_cast<long long>(check.incarnation()), state.c_str(), check.outcome().c_str());
}

int Status(HttpClient& client, bool json) {
  StatusResponse status;
  if (absl::Status s = client.Call("GET", "/v1/status", nullptr, status); !s.ok()) return Fail(s);
  if (json) {
    PrintJson(status);
    return 0;
  }
  std::printf("cluster %s, %d shards, kafka %s\n", status.cluster().c_str(), status.shard_count(),
              status.kafka_bootstrap().c_str());
  PrintStartupCheck(status.startup_check());
  std::printf("%-5s %10s %10s  %-14s %10s %10s %9s %9s %10s %8s %7s %8s\n", "shard", "outbox",
              "published", "peer", "applied", "watermark", "lag", "lag_s", "events", "dups",
              "parked", "missing");
  for (const ShardStatus& shard : status.shards()) {
    if (shard.peers().empty()) {
      std::printf("%-5d %10lld %10lld\n", shard.shard(),
                  static_cast<long long>(shard.outbox_next_task_id()),
                  static_cast<long long>(shard.published_task_id()));
    }
    for (const PeerShardStatus& peer : shard.peers()) {
      std::printf("%-5d %10lld %10lld  %-14s %10lld %10lld %9lld %9.3f %10lld %8lld %7lld %8lld\n",
                  shard.shard(), static_cast<long long>(shard.outbox_next_task_id()),
                  static_cast<long long>(shard.published_task_id()), peer.peer().c_str(),
                  static_cast<long long>(peer.applied_offset()),
                  static_cast<long long>(peer.high_watermark()),
                  static_cast<long long>(peer.lag_tasks()), peer.lag_seconds(),
                  static_cast<long long>(peer.events_applied()),
                  static_cast<long long>(peer.duplicate_events_dropped()),
                  static_cast<long long>(peer.tasks_parked()),
                  static_cast<long long>(peer.missing_tasks()));
    }
  }
  std::printf(
      "total lag %lld tasks; %lld parked tasks in the DLQ (%lld awaiting a resend); %lld corrupt "
      "messages\n",
      static_cast<long long>(status.total_lag_tasks()),
      static_cast<long long>(status.parked_tasks()),
      static_cast<long long>(status.dlq_awaiting_resend()),
      static_cast<long long>(status.corrupt_messages()));
  if (status.committed_appends() > 0) {
    std::printf("%lld appends made durable in %lld synced writes since start (group commit)\n",
                static_cast<long long>(status.committed_appends()),
                static_cast<long long>(status.commit_groups()));
  }
  if (!status.store_write_error().empty()) {
    std::printf("STORE WRITE FAILED (appends refused): %s\n", status.store_write_error().c_str());
  }
  for (const std::string& halted : status.halted_appliers()) {
    std::printf("HALTED: %s\n", halted.c_str());
  }
  for (const ShardStatus& shard : status.shards()) {
    if (shard.publish_failures() == 0) continue;
    std::printf(
        "PUBLISHING STUCK on shard %d: Kafka refused task %lld %lld times in a row since %s "
        "(runbooks/outbox-backlog.md): %s\n",
        shard.shard(), static_cast<long long>(shard.published_task_id()),
        static_cast<long long>(shard.publish_failures()),
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                         absl::FromUnixMicros(shard.publish_failing_since_unix_micros()),
                         absl::UTCTimeZone())
            .c_str(),
        shard.publish_error().c_str());
  }
  for (const PeerKafkaStatus& kafka : status.peer_kafka()) {
    if (kafka.stream() != "live") continue;
    std::printf("peer %s is read from the Kafka at %s (%s)\n", kafka.peer().c_str(),
                kafka.kafka_bootstrap().c_str(),
                kafka.peer_kafka_configured() ? "its own" : "this cluster's, shared");
  }
  for (const PeerKafkaStatus& kafka : status.peer_kafka()) {
    if (kafka.waiting_for_topics().empty()) continue;
    std::printf("WAITING: the %s stream of %s waits for %s on %s (%s) since %s\n",
                kafka.stream().c_str(), kafka.peer().c_str(),
                absl::StrJoin(kafka.waiting_for_topics(), ", ").c_str(),
                kafka.kafka_bootstrap().c_str(),
                kafka.peer_kafka_configured() ? "its own Kafka" : "this cluster's Kafka",
                absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                                 absl::FromUnixMicros(kafka.waiting_since_unix_micros()),
                                 absl::UTCTimeZone())
                    .c_str());
  }
  if (status.producer_recreations() > 0) {
    std::printf("%lld Kafka producers replaced after a fatal error since start\n",
                static_cast<long long>(status.producer_recreations()));
  }
  std::map<std::string, int64_t> acknowledged;
  for (const ShardStatus& shard : status.shards()) {
    for (const PeerShardStatus& peer : shard.peers()) {
      if (peer.missing_tasks_acknowledged() > 0) {
        acknowledged[peer.peer()] += peer.missing_tasks_acknowledged();
      }
    }
  }
  for (const auto& [peer, count] : acknowledged) {
    std::printf(
        "%lld task ids of %s were declared lost by an operator (missing-tasks acknowledge)\n",
        static_cast<long long>(count), peer.c_str());
  }
  if (status.reapply_pending_runs() > 0) {
    std::printf(
        "%lld runs reapply_pending: losing-branch signals, cancels or terminations not yet "
        "reapplied on the current branch (runbooks/forced-failover.md)\n",
        static_cast<long long>(status.reapply_pending_runs()));
    for (const ReapplyPendingNamespace& ns : status.reapply_pending()) {
      std::printf("  namespace %s: %lld runs%s\n",
                  ns.namespace_().empty() ? ns.namespace_id().c_str() : ns.namespace_().c_str(),
                  static_cast<long long>(ns.runs()),
                  ns.listed_size() < ns.runs()
                      ? absl::StrFormat(" (the first %d listed)", ns.listed_size()).c_str()
                      : "");
      for (const WorkflowKey& key : ns.listed()) {
        std::printf("    workflow %s run %s\n", key.workflow_id().c_str(), key.run_id().c_str());
      }
    }
  }
  return 0;
}

int DlqList(HttpClient& client, const Args& args, bool json) {
  ListParkedResponse response;
  const std::string target =
      args.Has("limit") ? "/v1/dlq" + Query({{"limit", args.Get("limit")}}) : "/v1/dlq";
  if (absl::Status s = client.Call("GET", target, nullptr, response); !s.ok()) return Fail(s);
  if (json) {
    PrintJson(response);
    return 0;
  }
  for (const ParkedTask& task : response.tasks()) {
    std::printf("#%lld from %s shard %d offset %lld %s%s attempts=%d workflow=%s: %s\n",
                static_cast<long long>(task.sequence()), task.source_cluster().c_str(),
                task.shard(), static_cast<long long>(task.kafka_offset()),
                ParkReason_Name(task.reason()).c_str(),
                task.awaiting_resend() ? " (awaiting resend)" : "", task.attempts(),
                task.workflow().workflow_id().c_str(), task.error().c_str());
  }
  std::printf("%d parked tasks\n", response.tasks_size());
  return 0;
}

// dlq retry|purge (--all | SEQUENCE...)
int DlqAction(HttpClient& client, const Args& args, bool json, const std::string& verb) {
  DlqRequest request;
  request.set_all(args.Has("all"));
  for (size_t i = 2; i < args.positional.size(); ++i) {
    int64_t sequence = 0;
    if (!absl::SimpleAtoi(args.positional[i], &sequence)) {
      return Usage("dlq " + verb + ": '" + args.positional[i] + "' is not a DLQ sequence");
    }
    request.add_sequences(sequence);
  }
  if (request.all() == (request.sequences_size() > 0)) {
    return Usage("dlq " + verb + " needs --all or DLQ sequences (from `xdcctl dlq list`)");
  }
  DlqActionResponse response;
  if (absl::Status s = client.Call("POST", "/v1/dlq/" + verb, &request, response); !s.ok()) {
    return Fail(s);
  }
  if (json) {
    PrintJson(response);
    return 0;
  }
  for (const DlqOutcome& outcome : response.outcomes()) {
    std::printf("#%lld %s%s%s\n", static_cast<long long>(outcome.sequence()),
                outcome.result().c_str(), outcome.error().empty() ? "" : ": ",
                outcome.error().c_str());
  }
  std::printf("%lld entries left in the DLQ\n", static_cast<long long>(response.dlq_entries()));
  return 0;
}

int Dlq(HttpClient& client, const Args& args, bool json) {
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "list";
  if (verb == "list") return DlqList(client, args, json);
  if (verb == "retry" || verb == "purge") return DlqAction(client, args, json, verb);
  return Usage("dlq needs list, retry or purge");
}

// startup-check skip --reason TEXT
int StartupCheckCommand(HttpClient& client, const Args& args, bool json) {
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "";
  if (verb != "skip") return Usage("startup-check needs skip");
  if (!args.Has("reason")) {
    return Usage(
        "startup-check skip needs --reason TEXT (why this cluster may write without "
        "hearing its peers)");
  }
  SkipStartupCheckRequest request;
  request.set_reason(args.Get("reason"));
  StartupCheck response;
  if (absl::Status s = client.Call("POST", "/v1/startup-check/skip", &request, response); !s.ok()) {
    return Fail(s);
  }
  if (json) {
    PrintJson(response);
    return 0;
  }
  PrintStartupCheck(response);
  return 0;
}

// missing-tasks acknowledge --peer CLUSTER [--shards N,N,...]
int MissingTasks(HttpClient& client, const Args& args, bool json) {
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "";
  if (verb != "acknowledge") return Usage("missing-tasks needs acknowledge");
  if (!args.Has("peer")) {
    return Usage(
        "missing-tasks acknowledge needs --peer CLUSTER (the cluster whose tasks are "
        "missing here: the peer column of `xdcctl status`)");
  }
  AcknowledgeMissingTasksRequest request;
  request.set_peer(args.Get("peer"));
  for (absl::string_view shard : absl::StrSplit(args.Get("shards"), ',', absl::SkipEmpty())) {
    int32_t value = 0;
    if (!absl::SimpleAtoi(shard, &value)) {
      return Usage(absl::StrCat("missing-tasks acknowledge: '", shard, "' is not a shard number"));
    }
    request.add_shards(value);
  }
  AcknowledgeMissingTasksResponse response;
  if (absl::Status s = client.Call("POST", "/v1/missing-tasks/acknowledge", &request, response);
      !s.ok()) {
    return Fail(s);
  }
  if (json) {
    PrintJson(response);
    return 0;
  }
  int64_t declared = 0;
  for (const MissingTasksAcknowledged& shard : response.shards()) {
    declared += shard.acknowledged();
    if (shard.acknowledged() > 0) {
      std::printf("shard %d: %lld task ids of %s declared lost (%lld in all)\n", shard.shard(),
                  static_cast<long long>(shard.acknowledged()), response.peer().c_str(),
                  static_cast<long long>(shard.total()));
    }
  }
  std::printf("%lld missing task ids of %s declared lost on %d shards; none are missing now\n",
              static_cast<long long>(declared), response.peer().c_str(), response.shards_size());
  return 0;
}

// fault list | arm NAME... | disarm NAME...
int Fault(HttpClient& client, const Args& args, bool json) {
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "list";
  FaultPointsResponse response;
  if (verb == "list") {
    if (absl::Status s = client.Call("GET", "/v1/fault-points", nullptr, response); !s.ok()) {
      return Fail(s);
    }
  } else if (verb == "arm" || verb == "disarm") {
    if (args.positional.size() <= 2) return Usage("fault " + verb + " needs fault point names");
    FaultPointsRequest request;
    for (size_t i = 2; i < args.positional.size(); ++i) {
      *(verb == "arm" ? request.add_arm() : request.add_disarm()) = args.positional[i];
    }
    if (absl::Status s = client.Call("POST", "/v1/fault-points", &request, response); !s.ok()) {
      return Fail(s);
    }
  } else {
    return Usage("fault needs list, arm or disarm");
  }
  if (json) {
    PrintJson(response);
  } else if (response.armed().empty()) {
    std::printf("no fault points armed\n");
  } else {
    std::printf("armed: %s\n", absl::StrJoin(response.armed(), " ").c_str());
  }
  return 0;
}

// Compares the namespace's content on this cluster and the peer with the digest trees (every
// run's status, branches and events; see docs/migration.md), until identical or `--wait` passes.
int Compare(HttpClient& client, const Args& args, bool json) {
  std::string missing;
  const std::string ns = Require(args, "namespace", missing);
  const std::string peer_address = Require(args, "peer", missing);
  if (!missing.empty()) return Usage(missing);
  double wait_seconds = 0;
  if (args.Has("wait") && !absl::SimpleAtod(args.Get("wait"), &wait_seconds)) {
    return Usage("--wait must be a number of seconds");
  }
  HttpClient peer(peer_address);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(wait_seconds * 1000));
  while (true) {
    // Right after registration a peer may not know the namespace yet: keep waiting.
    absl::StatusOr<MigrationVerifyReport> report = VerifyContent(client, peer, ns);
    if (report.ok() && report->identical()) {
      if (json) {
        PrintJson(*report);
      } else {
        std::printf("converged: %lld workflows identical on %s and %s\n",
                    static_cast<long long>(report->source_runs()), client.address().c_str(),
                    peer.address().c_str());
      }
      return 0;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      if (!report.ok()) return Fail(report.status());
      if (json) PrintJson(*report);
      std::printf("NOT converged: %d workflows differ\n", report->differences_size());
      for (int i = 0; i < report->differences_size() && i < 10; ++i) {
        std::printf("  %s\n", DescribeDifference(report->differences(i)).c_str());
      }
      for (const std::string& error : report->errors()) {
        std::printf("  NOT COMPARED: %s\n", error.c_str());
      }
      return kExitFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kComparePollMs));  // poll interval
  }
}

int Load(const std::string& address, const std::string& token, const Args& args, bool json) {
  LoadOptions options;
  options.address = address;
  options.bearer_token = token;
  std::string missing;
  options.namespace_name = Require(args, "namespace", missing);
  if (!missing.empty()) return Usage(missing);
  options.workflow_prefix = args.Get("prefix", options.workflow_prefix);
  const std::pair<const char*, int*> numbers[] = {
      {"workflows", &options.workflows},
      {"events-per-workflow", &options.events_per_workflow},
      {"signals", &options.signals_per_workflow},
      {"concurrency", &options.concurrency}};
  for (const auto& [flag, target] : numbers) {
    if (args.Has(flag) && !absl::SimpleAtoi(args.Get(flag), target)) {
      return Usage(absl::StrFormat("--%s must be a number", flag));
    }
  }
  absl::StatusOr<LoadResult> result = RunLoad(options);
  if (!result.ok()) return Usage(std::string(result.status().message()));
  if (json) {
    std::printf(
        "{\"workflows_completed\":%lld,\"requests_ok\":%lld,\"requests_failed\":%lld,"
        "\"events_written\":%lld,\"seconds\":%.3f}\n",
        static_cast<long long>(result->workflows_completed),
        static_cast<long long>(result->requests_ok),
        static_cast<long long>(result->requests_failed),
        static_cast<long long>(result->events_written), result->seconds);
  } else {
    std::printf(
        "wrote %lld workflows, %lld events in %lld acknowledged requests in %.2f s "
        "(%.0f events/s, %d connections); %lld failed\n",
        static_cast<long long>(result->workflows_completed),
        static_cast<long long>(result->events_written), static_cast<long long>(result->requests_ok),
        result->seconds, result->events_written / std::max(result->seconds, 1e-9),
        options.concurrency, static_cast<long long>(result->requests_failed));
  }
  if (result->requests_failed > 0) {
    std::fprintf(stderr, "xdcctl: first error: %s\n", result->first_error.c_str());
    return kExitFailed;
  }
  return 0;
}

int Main(int argc, char** argv) {
  const CommandLine line = ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc),
                                            XdcctlGlobalFlags(), XdcctlCommands());
  if (line.help) {
    if (line.command != nullptr) {
      std::printf("usage:\n%s", XdcctlCommandUsage(*line.command).c_str());
    } else {
      std::printf("%s%s", XdcctlUsage().c_str(), XdcctlMigrationUsage().c_str());
    }
    return 0;
  }
  if (!line.error.empty()) {
    // Nothing is sent: a flag the command does not know may be a misspelling of one that narrows
    // what it does (--shard for --shards).
    if (line.command == nullptr) return Usage(line.error);
    std::fprintf(stderr, "xdcctl: %s; usage:\n%s", line.error.c_str(),
                 XdcctlCommandUsage(*line.command).c_str());
    return kExitUsage;
  }
  if (line.command == nullptr) {
    std::printf("%s%s", XdcctlUsage().c_str(), XdcctlMigrationUsage().c_str());
    return kExitUsage;
  }
  const Args args{line.positional, line.flags};
  const char* env_address = std::getenv("XDC_ADDRESS");
  const std::string address =
      args.Get("address", env_address != nullptr ? env_address : kDefaultAddress);
  const char* env_token = std::getenv("XDC_API_TOKEN");
  const std::string token = args.Get("token", env_token != nullptr ? env_token : "");
  const bool json = args.Has("json");
  HttpClient client(address);
  client.set_bearer_token(token);
  const std::string& command = args.positional[0];
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "";
  const CtlCommand ctl{args.positional, args.flags, json};
  if (command == "cluster") return RunClusterCommand(client, ctl);
  if (command == "namespace" && IsNamespaceMembersVerb(verb)) {
    return RunNamespaceMembersCommand(client, ctl);
  }
  if (command == "migration" && IsBackfillVerb(verb)) return RunBackfillCommand(client, ctl);
  if (command == "namespace") return Namespace(client, args, json);
  if (command == "append") return Append(client, args, json);
  if (command == "signal") return Signal(client, args, json);
  if (command == "history") return History(client, args, json);
  if (command == "digests") return Digests(client, args, json);
  if (command == "status") return Status(client, json);
  if (command == "dlq") return Dlq(client, args, json);
  if (command == "missing-tasks") return MissingTasks(client, args, json);
  if (command == "startup-check") return StartupCheckCommand(client, args, json);
  if (command == "compare") return Compare(client, args, json);
  if (command == "migration" && args.positional.size() > 1 &&
      IsMigrationVerifyVerb(args.positional[1])) {
    return RunMigrationCommand(args, token, json);
  }
  if (command == "load") return Load(address, token, args, json);
  if (command == "fault") return Fault(client, args, json);
  return Usage("unknown command '" + command + "'");
}

}  // namespace
}  // namespace xdc

int main(int argc, char** argv) { return xdc::Main(argc, argv); }
