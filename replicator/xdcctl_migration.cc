#include "replicator/xdcctl_migration.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "protocol/content_digest.h"
#include "replicator/run_repairer.h"
#include "replicator/xdcctl_commands.h"

namespace xdc {

namespace {

constexpr double kDefaultMaxLagSeconds = 5;
constexpr double kDefaultRepairTimeoutSeconds = 60;
constexpr double kDefaultVerifyWaitSeconds = 10;  // cutover/rollback: until verify is clean
constexpr int kReverifyPollMs = 500;              // between verifications while waiting
// Per HTTP request; a digest tree of a large shard takes one scan of the namespace to compute.
constexpr double kDefaultRequestTimeoutSeconds = 30;
constexpr size_t kLeafBucketsPerRequest = kDigestBucketsPerShard;

int MigrationUsage(const std::string& problem) {
  std::fprintf(stderr, "xdcctl: %s\n\nusage:\n%s", problem.c_str(), XdcctlMigrationUsage().c_str());
  return kExitUsage;
}

struct Cluster {
  explicit Cluster(HttpClient& c) : client(c) {}
  HttpClient& client;
  std::string name;  // from GET /v1/status
  int32_t shard_count = 0;
};

absl::Status Identify(Cluster& cluster) {
  StatusResponse status;
  if (absl::Status s = cluster.client.Call("GET", "/v1/status", nullptr, status); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(cluster.client.address(), ": ", s.message()));
  }
  cluster.name = status.cluster();
  cluster.shard_count = status.shard_count();
  return absl::OkStatus();
}

absl::StatusOr<DigestTreeResponse> FetchTree(Cluster& cluster, const std::string& ns,
                                             int32_t shard) {
  DigestTreeResponse tree;
  if (absl::Status s = cluster.client.Call(
          "GET", "/v1/digest-tree" + Query({{"namespace", ns}, {"shard", absl::StrCat(shard)}}),
          nullptr, tree);
      !s.ok()) {
    return s;
  }
  if (tree.bucket_count() != kDigestBucketsPerShard) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s uses %d buckets per shard, this xdcctl %d: use an xdcctl of the daemons' version",
        cluster.name, tree.bucket_count(), kDigestBucketsPerShard));
  }
  return tree;
}

// Every leaf of `buckets` of `shard`, all pages.
absl::StatusOr<std::vector<RunDigest>> FetchLeaves(Cluster& cluster, const std::string& ns,
                                                   int32_t shard,
                                                   const std::vector<int32_t>& buckets) {
  std::vector<RunDigest> leaves;
  for (size_t begin = 0; begin < buckets.size(); begin += kLeafBucketsPerRequest) {
    const size_t end = std::min(buckets.size(), begin + kLeafBucketsPerRequest);
    const std::string list = absl::StrJoin(buckets.begin() + begin, buckets.begin() + end, ",");
    std::string token;
    do {
      std::map<std::string, std::string> params = {
          {"namespace", ns}, {"shard", absl::StrCat(shard)}, {"buckets", list}};
      if (!token.empty()) params["page_token"] = token;
      DigestLeavesResponse page;
      if (absl::Status s =
              cluster.client.Call("GET", "/v1/digest-leaves" + Query(params), nullptr, page);
          !s.ok()) {
        return s;
      }
      for (RunDigest& run : *page.mutable_runs()) leaves.push_back(std::move(run));
      token = page.next_page_token();
    } while (!token.empty());
  }
  return leaves;
}

// Compares one shard; adds to `report`. A shard that cannot be read is an error in the report,
// and the walk goes on.
void VerifyShard(Cluster& source, Cluster& target, const std::string& ns, int32_t shard,
                 MigrationVerifyReport& report) {
  auto error = [&](const Cluster& side, const absl::Status& s) {
    report.add_errors(absl::StrFormat("shard %d: %s (%s): %s", shard, side.name,
                                      side.client.address(), s.ToString()));
  };
  absl::StatusOr<DigestTreeResponse> source_tree = FetchTree(source, ns, shard);
  if (!source_tree.ok()) return error(source, source_tree.status());
  absl::StatusOr<DigestTreeResponse> target_tree = FetchTree(target, ns, shard);
  if (!target_tree.ok()) return error(target, target_tree.status());
  report.set_source_runs(report.source_runs() + source_tree->runs());
  report.set_target_runs(report.target_runs() + target_tree->runs());
  if (source_tree->root() == target_tree->root()) {
    report.set_shards_identical(report.shards_identical() + 1);
    return;
  }
  const std::vector<int32_t> buckets =
      DifferingBuckets(source_tree->buckets(), target_tree->buckets());
  absl::StatusOr<std::vector<RunDigest>> source_leaves = FetchLeaves(source, ns, shard, buckets);
  if (!source_leaves.ok()) return error(source, source_leaves.status());
  absl::StatusOr<std::vector<RunDigest>> target_leaves = FetchLeaves(target, ns, shard, buckets);
  if (!target_leaves.ok()) return error(target, target_leaves.status());
  for (RunDifference& difference : DiffRuns(*source_leaves, *target_leaves, shard)) {
    *report.add_differences() = std::move(difference);
  }
}

MigrationVerifyReport VerifyOnce(Cluster& source, Cluster& target, const std::string& ns) {
  MigrationVerifyReport report;
  report.set_namespace_(ns);
  report.set_source_cluster(source.name);
  report.set_target_cluster(target.name);
  report.set_shard_count(source.shard_count);
  report.set_bucket_count(kDigestBucketsPerShard);
  for (int32_t shard = 0; shard < source.shard_count; ++shard) {
    VerifyShard(source, target, ns, shard, report);
  }
  report.set_identical(report.differences().empty() && report.errors().empty());
  return report;
}

// How many of the report's differences are runs in flight (a write between the two reads).
int InFlightRuns(const MigrationVerifyReport& report) {
  return static_cast<int>(std::count_if(
      report.differences().begin(), report.differences().end(),
      [](const RunDifference& d) { return d.kind() == RUN_DIFFERENCE_KIND_IN_FLIGHT; }));
}

// Whether runs in flight are all that differs (no error): what a cutover accepts.
bool OnlyInFlight(const MigrationVerifyReport& report) {
  return report.errors().empty() && InFlightRuns(report) == report.differences_size();
}

enum class Accept { kIdentical, kInFlight };

// Verifies until the report is acceptable (identical; or, with Accept::kInFlight, nothing but
// runs in flight differs) or `wait` has passed.
MigrationVerifyReport Verify(Cluster& source, Cluster& target, const std::string& ns,
                             absl::Duration wait, Accept accept = Accept::kIdentical) {
  const absl::Time deadline = absl::Now() + wait;
  while (true) {
    MigrationVerifyReport report = VerifyOnce(source, target, ns);
    const bool acceptable =
        report.identical() || (accept == Accept::kInFlight && OnlyInFlight(report));
    if (acceptable || absl::Now() >= deadline) return report;
    std::this_thread::sleep_for(std::chrono::milliseconds(kReverifyPollMs));
  }
}

const char* KindLabel(RunDifferenceKind kind) {
  switch (kind) {
    case RUN_DIFFERENCE_KIND_MISSING_ON_TARGET:
      return "missing on target";
    case RUN_DIFFERENCE_KIND_MISSING_ON_SOURCE:
      return "missing on source";
    case RUN_DIFFERENCE_KIND_CONTENT_DIFFERS:
      return "content differs";
    case RUN_DIFFERENCE_KIND_UNREADABLE:
      return "unreadable";
    case RUN_DIFFERENCE_KIND_IN_FLIGHT:
      return "in flight";
    default:
      return "?";
  }
}

void PrintReport(const MigrationVerifyReport& report) {
  std::printf("verify %s: %s (source) and %s (target), %d shards x %d buckets\n",
              report.namespace_().c_str(), report.source_cluster().c_str(),
              report.target_cluster().c_str(), report.shard_count(), report.bucket_count());
  for (const RunDifference& d : report.differences()) {
    std::printf("  %s%s%s\n", DescribeDifference(d).c_str(),
                d.repair().empty() ? "" : "; repair: ", d.repair().c_str());
  }
  for (const std::string& error : report.errors()) {
    std::printf("  NOT COMPARED: %s\n", error.c_str());
  }
  std::printf(
      "%s: %d of %d shards identical; %lld runs on source, %lld on target; %d runs "
      "differ; %d errors",
      report.identical() ? "IDENTICAL" : (report.errors().empty() ? "DIFFERENT" : "ERRORS"),
      report.shards_identical(), report.shard_count(), static_cast<long long>(report.source_runs()),
      static_cast<long long>(report.target_runs()), report.differences_size(),
      report.errors_size());
  if (report.repaired() > 0) {
    std::printf("; %lld runs repaired", static_cast<long long>(report.repaired()));
  }
  std::printf("\n");
}

int ExitFor(const MigrationVerifyReport& report) {
  if (!report.errors().empty()) return kExitFailed;
  return report.differences().empty() ? 0 : kExitDifferent;
}

bool Repairable(const RunDifference& d) {
  // In flight includes a run whose last task was lost: its target copy stays behind for good.
  return d.kind() == RUN_DIFFERENCE_KIND_MISSING_ON_TARGET ||
         d.kind() == RUN_DIFFERENCE_KIND_CONTENT_DIFFERS ||
         d.kind() == RUN_DIFFERENCE_KIND_IN_FLIGHT ||
         (d.kind() == RUN_DIFFERENCE_KIND_UNREADABLE &&
          d.detail().starts_with(kUnreadableOnTarget));
}

using RunId = std::pair<std::string, std::string>;  // (workflow id, run id)

// Asks the source to resend every repairable run of `report`; notes the outcome in each
// difference. Returns the runs queued.
std::set<RunId> RequestRepairs(Cluster& source, const Cluster& target, const std::string& ns,
                               MigrationVerifyReport& report) {
  std::vector<RunDifference*> wanted;
  for (RunDifference& d : *report.mutable_differences()) {
    if (Repairable(d)) {
      wanted.push_back(&d);
    } else {
      d.set_repair(d.kind() == RUN_DIFFERENCE_KIND_MISSING_ON_SOURCE
                       ? "not repairable: the source has no copy to send (a run deleted or "
                         "retained out on the source stays on the target; remove it there if "
                         "that is intended)"
                       : "not repairable: the source cannot read its copy");
    }
  }
  std::map<RunId, RunDifference*> by_run;
  for (RunDifference* d : wanted) by_run[{d->workflow_id(), d->run_id()}] = d;
  std::set<RunId> queued;
  for (size_t begin = 0; begin < wanted.size(); begin += kMaxRepairRunsPerRequest) {
    RepairRunsRequest request;
    request.set_namespace_(ns);
    request.set_target_cluster(target.name);
    for (size_t i = begin; i < std::min(wanted.size(), begin + kMaxRepairRunsPerRequest); ++i) {
      RunRef* run = request.add_runs();
      run->set_workflow_id(wanted[i]->workflow_id());
      run->set_run_id(wanted[i]->run_id());
    }
    RepairRunsResponse response;
    if (absl::Status s = source.client.Call("POST", "/v1/migration/repair", &request, response);
        !s.ok()) {
      for (const RunRef& run : request.runs()) {
        by_run[{run.workflow_id(), run.run_id()}]->set_repair(
            absl::StrCat("the source refused: ", s.ToString()));
      }
      continue;
    }
    for (const RepairOutcome& outcome : response.outcomes()) {
      RunDifference* d = by_run[{outcome.workflow_id(), outcome.run_id()}];
      if (d == nullptr) continue;
      if (outcome.result() == "queued") {
        queued.insert({outcome.workflow_id(), outcome.run_id()});
        d->set_repair("sent");
      } else {
        d->set_repair(absl::StrCat(outcome.result(), ": ", outcome.error()));
      }
    }
  }
  return queued;
}

// True when every run of `runs` has the same leaf on both sides (a run absent on both counts).
bool RunsMatch(Cluster& source, Cluster& target, const std::string& ns,
               const std::map<int32_t, std::set<int32_t>>& buckets_by_shard,
               const std::set<RunId>& runs) {
  for (const auto& [shard, bucket_set] : buckets_by_shard) {
    const std::vector<int32_t> buckets(bucket_set.begin(), bucket_set.end());
    absl::StatusOr<std::vector<RunDigest>> a = FetchLeaves(source, ns, shard, buckets);
    absl::StatusOr<std::vector<RunDigest>> b = FetchLeaves(target, ns, shard, buckets);
    if (!a.ok() || !b.ok()) return false;
    for (const RunDifference& d : DiffRuns(*a, *b, shard)) {
      if (runs.contains({d.workflow_id(), d.run_id()})) return false;
    }
  }
  return true;
}

int VerifyCommand(Cluster& source, Cluster& target, const std::string& ns, const Args& args,
                  bool json) {
  double wait_seconds = 0;
  double repair_timeout = kDefaultRepairTimeoutSeconds;
  if (args.Has("wait") &&
      (!absl::SimpleAtod(args.Get("wait"), &wait_seconds) || wait_seconds < 0)) {
    return MigrationUsage("--wait must be a number of seconds");
  }
  if (args.Has("repair-timeout") &&
      (!absl::SimpleAtod(args.Get("repair-timeout"), &repair_timeout) || repair_timeout <= 0)) {
    return MigrationUsage("--repair-timeout must be a positive number of seconds");
  }
  MigrationVerifyReport report = Verify(source, target, ns, absl::Seconds(wait_seconds));
  if (!args.Has("repair") || report.differences().empty()) {
    json ? PrintJson(report) : PrintReport(report);
    return ExitFor(report);
  }
  // Repair: resend, wait until the resent runs match, then verify everything again.
  std::set<RunId> queued = RequestRepairs(source, target, ns, report);
  std::map<int32_t, std::set<int32_t>> buckets_by_shard;
  for (const RunDifference& d : report.differences()) {
    if (queued.contains({d.workflow_id(), d.run_id()})) {
      buckets_by_shard[d.shard()].insert(d.bucket());
    }
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(repair_timeout);
  bool matched = queued.empty();
  while (!matched && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kReverifyPollMs));
    matched = RunsMatch(source, target, ns, buckets_by_shard, queued);
  }
  if (!json) {
    std::printf("before repair:\n");
    PrintReport(report);
    if (!matched) {
      std::printf(
          "the resent runs did not all match within %.0f s: look for a refused repair on the "
          "target (xdcctl --address %s dlq list) and at its log (repair.applied lines)\n",
          repair_timeout, target.client.address().c_str());
    }
  }
  MigrationVerifyReport after = VerifyOnce(source, target, ns);
  int64_t repaired = 0;
  std::map<RunId, const RunDifference*> still;
  for (const RunDifference& d : after.differences()) still[{d.workflow_id(), d.run_id()}] = &d;
  for (const RunDifference& d : report.differences()) {
    if (queued.contains({d.workflow_id(), d.run_id()}) &&
        !still.contains({d.workflow_id(), d.run_id()})) {
      ++repaired;
    }
  }
  // Each remaining difference says what became of its repair.
  std::map<RunId, std::string> repair_notes;
  for (const RunDifference& d : report.differences()) {
    repair_notes[{d.workflow_id(), d.run_id()}] = queued.contains({d.workflow_id(), d.run_id()})
                                                      ? "sent, but the target still differs"
                                                      : d.repair();
  }
  for (RunDifference& d : *after.mutable_differences()) {
    auto it = repair_notes.find({d.workflow_id(), d.run_id()});
    d.set_repair(it == repair_notes.end() ? "new since the repair was asked for" : it->second);
  }
  after.set_repaired(repaired);
  if (json) {
    PrintJson(after);
  } else {
    std::printf("after repair:\n");
    PrintReport(after);
  }
  return ExitFor(after);
}

// The highest lag of `follower` behind `leader` over every shard, or why a handover from `leader`
// to `follower` cannot complete (a halted applier, an unknown partition end, missing task ids).
absl::StatusOr<double> LagSeconds(Cluster& follower, const std::string& leader) {
  StatusResponse status;
  if (absl::Status s = follower.client.Call("GET", "/v1/status", nullptr, status); !s.ok()) {
    return s;
  }
  if (!status.halted_appliers().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        follower.name, " has a halted applier: ", absl::StrJoin(status.halted_appliers(), "; ")));
  }
  double lag = 0;
  int shards = 0;
  int64_t missing = 0;
  for (const ShardStatus& shard : status.shards()) {
    for (const PeerShardStatus& peer : shard.peers()) {
      if (peer.peer() != leader) continue;
      ++shards;
      lag = std::max(lag, peer.lag_seconds());
      missing += peer.missing_tasks();
      if (peer.high_watermark() < 0) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s does not know the end of %s's shard %d yet", follower.name, leader, shard.shard()));
      }
    }
  }
  if (shards == 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s does not apply %s's stream (not a peer)", follower.name, leader));
  }
  // The handover's target does not activate while task ids of the source are missing (they may
  // hold any namespace's writes): starting it would refuse writes until its deadline, then cancel.
  if (missing > 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s counts %d task ids of %s's stream as missing (the 'missing' column of its status): "
        "a graceful handover waits for them and would refuse writes until its deadline; see "
        "runbooks/missing-tasks.md",
        follower.name, missing, leader));
  }
  return lag;
}

// cutover (from = source, to = target) and rollback (from = target, to = source).
int HandoverCommand(Cluster& from, Cluster& to, const std::string& ns, const Args& args, bool json,
                    const char* what) {
  double max_lag = kDefaultMaxLagSeconds;
  double verify_wait = kDefaultVerifyWaitSeconds;
  if (args.Has("max-lag-seconds") &&
      (!absl::SimpleAtod(args.Get("max-lag-seconds"), &max_lag) || max_lag < 0)) {
    return MigrationUsage("--max-lag-seconds must be a number of seconds");
  }
  if (args.Has("verify-wait") &&
      (!absl::SimpleAtod(args.Get("verify-wait"), &verify_wait) || verify_wait < 0)) {
    return MigrationUsage("--verify-wait must be a number of seconds");
  }
  FailoverRequest request;
  request.set_target_cluster(to.name);
  if (args.Has("timeout")) {
    absl::Duration timeout;
    if (!absl::ParseDuration(args.Get("timeout"), &timeout) || timeout <= absl::ZeroDuration()) {
      return MigrationUsage("--timeout takes a duration such as 30s, 500ms or 2m");
    }
    request.set_timeout_ms(absl::ToInt64Milliseconds(timeout));
  }
  auto refuse = [&](const std::string& why) {
    std::fprintf(stderr, "xdcctl: migration %s refused: %s; nothing was changed\n", what,
                 why.c_str());
    return kExitRefused;
  };
  NamespaceRecord record;
  if (absl::Status s = from.client.Call("GET", "/v1/namespaces/" + ns, nullptr, record); !s.ok()) {
    return Fail(s);
  }
  if (record.active_cluster() != from.name || record.state() != NAMESPACE_STATE_ACTIVE) {
    return refuse(absl::StrFormat("namespace %s is %s on %s here, not ACTIVE on %s", ns,
                                  NamespaceState_Name(record.state()), record.active_cluster(),
                                  from.name));
  }
  if (args.Has("skip-verify")) {  // rollback only (the command table)
    std::fprintf(stderr, "xdcctl: verification skipped (--skip-verify)\n");
  } else {
    // Under live writes some runs are always in flight: the handover itself waits for every
    // acknowledged write to reach the target, so they do not block it. Anything else does.
    MigrationVerifyReport report =
        Verify(from, to, ns, absl::Seconds(verify_wait), Accept::kInFlight);
    const int in_flight = InFlightRuns(report);
    if (!OnlyInFlight(report)) {
      PrintReport(report);
      return refuse(absl::StrFormat(
          "verify is not clean (%d runs differ, %d of them only in flight; %d errors) after %.0f "
          "s; repair with 'xdcctl migration verify --repair' (see runbooks/migration.md)",
          report.differences_size(), in_flight, report.errors_size(), verify_wait));
    }
    std::printf("verify: %s and %s identical (%lld runs on %s", from.name.c_str(), to.name.c_str(),
                static_cast<long long>(report.source_runs()), from.name.c_str());
    if (in_flight > 0) {
      std::printf("; %d runs in flight, which the handover waits for", in_flight);
    }
    std::printf(")\n");
    // A target that joined the namespace late is refused a plain handover until shown to hold
    // the same runs (protocol/federation.h CheckTargetHoldsHistory): this verify shows it.
    request.set_target_verified_identical(true);
  }
  absl::StatusOr<double> lag = LagSeconds(to, from.name);
  if (!lag.ok()) return refuse(std::string(lag.status().message()));
  if (*lag > max_lag) {
    return refuse(absl::StrFormat("%s lags %.3f s behind %s, more than --max-lag-seconds %.3f",
                                  to.name, *lag, from.name, max_lag));
  }
  std::printf("lag: %s is %.3f s behind %s (bound %.3f s); handing %s over to %s\n",
              to.name.c_str(), *lag, from.name.c_str(), max_lag, ns.c_str(), to.name.c_str());
  if (absl::Status s =
          from.client.Call("POST", "/v1/namespaces/" + ns + "/failover", &request, record);
      !s.ok()) {
    return Fail(s);
  }
  const int64_t deadline_ms =
      (record.handover().deadline_unix_micros() - record.handover().started_unix_micros()) / 1000;
  return WaitForHandover(from.client, ns, record,
                         absl::Milliseconds(deadline_ms) + kHandoverAnswerGrace,
                         /*cancelling=*/false, json);
}

}  // namespace

absl::StatusOr<MigrationVerifyReport> VerifyContent(HttpClient& source_client,
                                                    HttpClient& target_client,
                                                    const std::string& ns) {
  Cluster source(source_client);
  Cluster target(target_client);
  for (Cluster* cluster : {&source, &target}) {
    if (absl::Status s = Identify(*cluster); !s.ok()) return s;
  }
  if (source.shard_count != target.shard_count) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s has %d shards and %s %d: clusters of one federation share "
                        "shard_count",
                        source.name, source.shard_count, target.name, target.shard_count));
  }
  return VerifyOnce(source, target, ns);
}

std::string DescribeDifference(const RunDifference& d) {
  return absl::StrFormat("shard %d bucket %d  %s run %s: %s: %s", d.shard(), d.bucket(),
                         d.workflow_id(), d.run_id(), KindLabel(d.kind()), d.detail());
}

bool IsMigrationVerifyVerb(const std::string& verb) {
  return verb == "verify" || verb == "cutover" || verb == "rollback";
}

int RunMigrationCommand(const Args& args, const std::string& token, bool json) {
  const std::string verb = args.positional.size() > 1 ? args.positional[1] : "";
  if (!IsMigrationVerifyVerb(verb)) return MigrationUsage("migration needs a command");
  const std::string ns = args.Get("namespace");
  const std::string source_address = args.Get("source");
  const std::string target_address = args.Get("target");
  if (ns.empty() || source_address.empty() || target_address.empty()) {
    return MigrationUsage("migration " + verb + " needs --namespace, --source and --target");
  }
  double request_timeout = kDefaultRequestTimeoutSeconds;
  if (args.Has("request-timeout") &&
      (!absl::SimpleAtod(args.Get("request-timeout"), &request_timeout) || request_timeout <= 0)) {
    return MigrationUsage("--request-timeout must be a positive number of seconds");
  }
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(request_timeout * 1000));
  HttpClient source_client(source_address, timeout);
  HttpClient target_client(target_address, timeout);
  source_client.set_bearer_token(token);
  target_client.set_bearer_token(token);
  Cluster source(source_client);
  Cluster target(target_client);
  for (Cluster* cluster : {&source, &target}) {
    if (absl::Status s = Identify(*cluster); !s.ok()) return Fail(s);
  }
  if (source.name == target.name) {
    return MigrationUsage("--source and --target are the same cluster (" + source.name + ")");
  }
  if (source.shard_count != target.shard_count) {
    return Fail(absl::FailedPreconditionError(
        absl::StrFormat("%s has %d shards and %s %d: clusters of one federation share "
                        "shard_count",
                        source.name, source.shard_count, target.name, target.shard_count)));
  }
  if (verb == "verify") return VerifyCommand(source, target, ns, args, json);
  if (verb == "cutover") return HandoverCommand(source, target, ns, args, json, "cutover");
  return HandoverCommand(target, source, ns, args, json, "rollback");
}

}  // namespace xdc
