#include "chaos/checker.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "protocol/handover.h"
#include "protocol/version_history.h"
#include "replicator/http_client.h"

namespace xdc::chaos {
namespace {

using Items = std::vector<std::pair<int64_t, int64_t>>;  // (last event id, version)

struct RunKey {
  std::string workflow_id;
  std::string run_id;
  auto operator<=>(const RunKey&) const = default;
};

std::string RunName(const RunKey& key) { return absl::StrCat(key.workflow_id, "/", key.run_id); }

std::string ItemsString(const Items& items) {
  std::string out = "[";
  for (const auto& [event_id, version] : items) {
    absl::StrAppend(&out, "(", event_id, ",", version, ")");
  }
  return out + "]";
}

Items ItemsOf(const VersionHistory& history) {
  Items items;
  for (const VersionHistoryItem& item : history.items()) {
    items.emplace_back(item.event_id(), item.version());
  }
  return items;
}

// One HTTP client per cluster. Not thread-safe: one per thread.
class Clients {
 public:
  Clients(const std::vector<ClusterEndpoint>& clusters, const std::string& token) {
    for (const ClusterEndpoint& cluster : clusters) {
      clients_.push_back(std::make_unique<HttpClient>(
          cluster.address, absl::ToChronoMilliseconds(kCheckRequestTimeout)));
      clients_.back()->set_bearer_token(token);
    }
  }
  HttpClient& operator[](size_t i) { return *clients_[i]; }

 private:
  std::vector<std::unique_ptr<HttpClient>> clients_;
};

absl::Status Get(HttpClient& client, const std::string& target, google::protobuf::Message& out) {
  return client.Call("GET", target, nullptr, out);
}

// Every run of a digest list as (workflow, run, next event id, digest, whether it is the
// workflow's current run), sorted: converged clusters also agree on each workflow's current run.
using DigestList = std::vector<std::tuple<std::string, std::string, int64_t, std::string, bool>>;

DigestList DigestListOf(const ListDigestsResponse& response) {
  DigestList list;
  for (const WorkflowDigest& d : response.workflows()) {
    list.emplace_back(d.workflow_id(), d.run_id(), d.next_event_id(), d.digest(), d.current());
  }
  std::sort(list.begin(), list.end());
  return list;
}

// What nothing-left-to-apply means for one cluster: its publishers delivered everything in
// their outboxes and its appliers reached every peer partition's known end. Empty when so.
std::vector<std::string> Backlog(const std::string& name, const StatusResponse& status) {
  std::vector<std::string> problems;
  for (const ShardStatus& shard : status.shards()) {
    if (shard.published_task_id() != shard.outbox_next_task_id()) {
      problems.push_back(absl::StrCat(name, " shard ", shard.shard(), " has ",
                                      shard.outbox_next_task_id() - shard.published_task_id(),
                                      " tasks not yet published"));
    }
    for (const PeerShardStatus& peer : shard.peers()) {
      if (peer.high_watermark() < 0 || peer.lag_tasks() != 0 ||
          peer.applied_offset() != peer.high_watermark()) {
        problems.push_back(absl::StrCat(name, " shard ", shard.shard(), " has applied ",
                                        peer.applied_offset(), " of ", peer.high_watermark(),
                                        " tasks from ", peer.peer()));
      }
    }
  }
  for (const std::string& halted : status.halted_appliers()) {
    problems.push_back(absl::StrCat(name, ": ", halted));
  }
  return problems;
}

struct Poll {
  std::vector<std::string> problems;  // empty: every cluster caught up and digests equal
  std::vector<std::optional<DigestList>> digests;  // per cluster; nullopt: could not read
  absl::Status error;                              // the last read error, if any
};

Poll PollClusters(const std::vector<ClusterEndpoint>& clusters, Clients& clients,
                  const std::string& ns) {
  Poll poll;
  for (size_t i = 0; i < clusters.size(); ++i) {
    StatusResponse status;
    if (absl::Status s = Get(clients[i], "/v1/status", status); !s.ok()) {
      poll.problems.push_back(absl::StrCat(clusters[i].name, ": /v1/status: ", s.ToString()));
      poll.error = s;
    } else {
      for (std::string& p : Backlog(clusters[i].name, status)) {
        poll.problems.push_back(std::move(p));
      }
    }
    ListDigestsResponse digests;
    absl::Status s = Get(clients[i], "/v1/digests?namespace=" + QueryEscape(ns), digests);
    if (s.ok() || absl::IsNotFound(s)) {  // NOT_FOUND: the namespace is not (yet) there
      poll.digests.push_back(DigestListOf(digests));
      if (!s.ok()) poll.problems.push_back(absl::StrCat(clusters[i].name, ": ", s.message()));
    } else {
      poll.digests.push_back(std::nullopt);
      poll.problems.push_back(absl::StrCat(clusters[i].name, ": /v1/digests: ", s.ToString()));
      poll.error = s;
    }
  }
  for (size_t i = 1; i < clusters.size(); ++i) {
    if (poll.digests[0] && poll.digests[i] && *poll.digests[0] != *poll.digests[i]) {
      DigestList only;
      std::set_symmetric_difference(poll.digests[0]->begin(), poll.digests[0]->end(),
                                    poll.digests[i]->begin(), poll.digests[i]->end(),
                                    std::back_inserter(only));
      poll.problems.push_back(absl::StrCat("digests of ", clusters[0].name, " and ",
                                           clusters[i].name, " differ (", only.size(),
                                           " entries on one side only)"));
    }
  }
  return poll;
}

// Collects findings; merges identical findings of several clusters into one.
class Findings {
 public:
  void Add(std::string invariant, std::string cluster, std::string workflow, std::string detail) {
    all_.push_back(
        {std::move(invariant), std::move(cluster), std::move(workflow), std::move(detail)});
  }
  // `per_cluster[i]` is cluster i's finding (empty: none); equal findings are reported once.
  void AddGrouped(const std::string& invariant, const std::vector<std::string>& names,
                  const std::string& workflow, const std::vector<std::string>& per_cluster) {
    std::map<std::string, std::vector<std::string>> groups;
    for (size_t i = 0; i < per_cluster.size(); ++i) {
      if (!per_cluster[i].empty()) groups[per_cluster[i]].push_back(names[i]);
    }
    for (auto& [detail, clusters] : groups) {
      Add(invariant, absl::StrJoin(clusters, ","), workflow, detail);
    }
  }
  void Merge(Findings&& other) {
    for (Violation& v : other.all_) all_.push_back(std::move(v));
  }
  // Sorted, counted, and listed up to the bound.
  void Into(CheckResult& result) {
    std::sort(all_.begin(), all_.end(), [](const Violation& a, const Violation& b) {
      return std::tie(a.invariant, a.workflow, a.cluster, a.detail) <
             std::tie(b.invariant, b.workflow, b.cluster, b.detail);
    });
    for (Violation& v : all_) {
      if (++result.violation_counts[v.invariant] <= kMaxListedViolationsPerInvariant) {
        result.violations.push_back(std::move(v));
      }
    }
  }

 private:
  std::vector<Violation> all_;
};

// A run's history on one cluster, indexed by request id.
struct IndexedHistory {
  GetHistoryResponse history;
  std::unordered_map<std::string, std::vector<const HistoryEvent*>> by_request;

  explicit IndexedHistory(GetHistoryResponse h) : history(std::move(h)) {
    for (const HistoryEvent& event : history.events()) {
      if (std::optional<std::string> id = RequestIdOf(event)) by_request[*id].push_back(&event);
    }
  }
  const HistoryEvent* EventAt(int64_t event_id) const {
    if (event_id < 1 || event_id > history.events_size()) return nullptr;
    const HistoryEvent& event = history.events(static_cast<int>(event_id - 1));
    return event.event_id() == event_id ? &event : nullptr;
  }
};

enum class AckOutcome {
  kPresent,             // on the current branch, at its event id and version
  kLostAppend,          // an append on a losing branch: the RPO
  kSignalReapplied,     // a signal on a losing branch, with its copy on the current branch
  kSignalNotReapplied,  // a signal on a losing branch without a (correct) copy
  kViolation,           // missing, or another write in its place
};

// Where `ack` is on one cluster's copy of its run; `detail` explains a violation or a loss.
AckOutcome ClassifyAck(const IndexedHistory* run, const AckedWrite& ack, std::string& detail) {
  const std::string what =
      absl::StrCat(KindName(ack.kind), " acknowledged by ", ack.cluster, " as event ", ack.event_id,
                   " v", ack.version, " (request ", ack.request_id, ")");
  if (run == nullptr) {
    detail = absl::StrCat(what, ": the run is not on this cluster");
    return AckOutcome::kViolation;
  }
  const VersionHistories& histories = run->history.version_histories();
  const VersionHistory* current = CurrentBranch(histories);
  if (current != nullptr && ContainsEvent(*current, ack.event_id, ack.version)) {
    const HistoryEvent* event = run->EventAt(ack.event_id);
    const std::optional<std::string> id = event ? RequestIdOf(*event) : std::nullopt;
    if (id == ack.request_id) return AckOutcome::kPresent;
    detail = absl::StrCat(what, ": the current branch's event ", ack.event_id, " v", ack.version,
                          " is another write (request ", id.value_or("none"), ")");
    return AckOutcome::kViolation;
  }
  bool on_losing_branch = false;
  for (int i = 0; i < histories.histories_size(); ++i) {
    if (i != histories.current_index() &&
        ContainsEvent(histories.histories(i), ack.event_id, ack.version)) {
      on_losing_branch = true;
    }
  }
  if (!on_losing_branch) {
    detail = absl::StrCat(what, ": on no branch (current ",
                          ItemsString(current ? ItemsOf(*current) : Items{}), ")");
    return AckOutcome::kViolation;
  }
  if (ack.kind == AckedWrite::Kind::kAppend) {
    detail = absl::StrCat(what, ": on a losing branch, lost (the failover's RPO)");
    return AckOutcome::kLostAppend;
  }
  auto copies = run->by_request.find(ack.request_id);
  if (copies == run->by_request.end()) {
    detail = absl::StrCat(what, ": on a losing branch and not reapplied on the current branch");
    return AckOutcome::kSignalNotReapplied;
  }
  for (const HistoryEvent* copy : copies->second) {
    const EventOrigin& origin = copy->reapplied_from();
    if (copy->has_reapplied_from() && origin.run_id() == ack.run_id &&
        origin.event_id() == ack.event_id && origin.version() == ack.version) {
      return AckOutcome::kSignalReapplied;
    }
  }
  const HistoryEvent* found = copies->second.front();
  detail = absl::StrCat(
      what, ": on a losing branch; the current branch has its request at event ", found->event_id(),
      " but not as a copy of the acknowledged event (origin ",
      found->has_reapplied_from() ? found->reapplied_from().ShortDebugString() : "none", ")");
  return AckOutcome::kSignalNotReapplied;
}

// Request ids twice on the current branch, origins reapplied twice; "" when none.
std::string Duplicates(const IndexedHistory& run) {
  std::vector<std::string> found;
  for (const auto& [id, events] : run.by_request) {
    if (events.size() < 2) continue;
    std::vector<int64_t> ids;
    for (const HistoryEvent* e : events) ids.push_back(e->event_id());
    std::sort(ids.begin(), ids.end());
    found.push_back(absl::StrCat("request ", id, " at events ", absl::StrJoin(ids, ",")));
  }
  std::map<std::tuple<std::string, int64_t, int64_t>, std::vector<int64_t>> origins;
  for (const HistoryEvent& e : run.history.events()) {
    if (!e.has_reapplied_from()) continue;
    const EventOrigin& o = e.reapplied_from();
    origins[{o.run_id(), o.event_id(), o.version()}].push_back(e.event_id());
  }
  for (const auto& [origin, ids] : origins) {
    if (ids.size() < 2) continue;
    found.push_back(absl::StrCat("origin (", std::get<0>(origin), ", event ", std::get<1>(origin),
                                 ", v", std::get<2>(origin), ") reapplied at events ",
                                 absl::StrJoin(ids, ",")));
  }
  std::sort(found.begin(), found.end());
  return absl::StrJoin(found, "; ");
}

// What one run contributes to the result.
struct RunReport {
  Findings findings;
  int64_t forked = 0, events = 0, reapplied_events = 0;
  int64_t lost_appends = 0, signals_on_losing = 0, signals_reapplied = 0;
  std::vector<std::string> lost;
  std::map<int64_t, std::string> versions;  // every branch item's version -> an example run
};

// A run's branches (sorted: their order is local), current branch, next event id and digest.
std::string BranchSummary(const GetHistoryResponse& history) {
  std::vector<Items> all;
  for (const VersionHistory& branch : history.version_histories().histories()) {
    all.push_back(ItemsOf(branch));
  }
  std::sort(all.begin(), all.end());
  std::string branches;
  for (const Items& items : all) absl::StrAppend(&branches, ItemsString(items));
  const VersionHistory* current = CurrentBranch(history.version_histories());
  return absl::StrCat("branches ", branches, " current ",
                      ItemsString(current ? ItemsOf(*current) : Items{}), " next ",
                      history.next_event_id(), " digest ", history.digest());
}

// "converged" for one run: on every cluster, with the same branches as on `reference`.
void CheckConvergence(const std::string& run_name, const std::vector<std::string>& names,
                      const std::vector<std::optional<IndexedHistory>>& copies, size_t reference,
                      RunReport& report) {
  std::vector<std::string> missing;
  const std::string there = BranchSummary(copies[reference]->history);
  for (size_t i = 0; i < copies.size(); ++i) {
    if (!copies[i]) {
      missing.push_back(names[i]);
      continue;
    }
    for (const VersionHistory& branch : copies[i]->history.version_histories().histories()) {
      for (const VersionHistoryItem& item : branch.items()) {
        report.versions.try_emplace(item.version(), run_name);
      }
    }
    if (i == reference) continue;
    const std::string here = BranchSummary(copies[i]->history);
    if (here != there) {
      report.findings.Add(kInvariantConverged, names[i], run_name,
                          absl::StrCat(here, "; on ", names[reference], ": ", there));
    }
  }
  if (!missing.empty()) {
    report.findings.Add(kInvariantConverged, absl::StrJoin(missing, ","), run_name,
                        absl::StrCat("the run is on ", names[reference], " but not here"));
  }
}

// "acknowledged_present" for the run's acknowledged writes; counts the losses on the first
// cluster that holds the run.
void CheckAcks(const std::string& run_name, const std::vector<std::string>& names,
               const std::vector<std::optional<IndexedHistory>>& copies,
               const std::vector<const AckedWrite*>& acks, bool allow_lost_appends,
               RunReport& report) {
  for (const AckedWrite* ack : acks) {
    std::vector<std::string> per_cluster(copies.size());
    std::optional<AckOutcome> counted;
    std::string counted_detail;
    for (size_t i = 0; i < copies.size(); ++i) {
      std::string detail;
      const AckOutcome outcome = ClassifyAck(copies[i] ? &*copies[i] : nullptr, *ack, detail);
      const bool violation = outcome == AckOutcome::kViolation ||
                             outcome == AckOutcome::kSignalNotReapplied ||
                             (outcome == AckOutcome::kLostAppend && !allow_lost_appends);
      if (violation) per_cluster[i] = detail;
      if (!counted && copies[i]) {
        counted = outcome;
        counted_detail = detail;
      }
    }
    if (counted == AckOutcome::kLostAppend) {
      ++report.lost_appends;
      report.lost.push_back(absl::StrCat(run_name, ": ", counted_detail));
    }
    if (counted == AckOutcome::kSignalReapplied || counted == AckOutcome::kSignalNotReapplied) {
      ++report.signals_on_losing;
    }
    if (counted == AckOutcome::kSignalReapplied) ++report.signals_reapplied;
    report.findings.AddGrouped(kInvariantAcknowledgedPresent, names, run_name, per_cluster);
  }
}

// Every check of one run, given its copy on each cluster (nullopt: not there).
void CheckRun(const RunKey& key, const std::vector<std::string>& names,
              const std::vector<std::optional<IndexedHistory>>& copies,
              const std::vector<const AckedWrite*>& acks, bool allow_lost_appends,
              RunReport& report) {
  const std::string run_name = RunName(key);
  const auto reference =
      std::find_if(copies.begin(), copies.end(), [](const auto& c) { return c.has_value(); });
  if (reference != copies.end()) {
    const GetHistoryResponse& ref = (*reference)->history;
    report.forked += ref.version_histories().histories_size() > 1 ? 1 : 0;
    report.events += ref.events_size();
    for (const HistoryEvent& e : ref.events()) report.reapplied_events += e.has_reapplied_from();
    CheckConvergence(run_name, names, copies, reference - copies.begin(), report);
  }
  std::vector<std::string> duplicates(copies.size());
  for (size_t i = 0; i < copies.size(); ++i) {
    if (copies[i]) duplicates[i] = Duplicates(*copies[i]);
  }
  report.findings.AddGrouped(kInvariantAppliedOnce, names, run_name, duplicates);
  CheckAcks(run_name, names, copies, acks, allow_lost_appends, report);
}

// Problems named in the "quiesced" violation.
constexpr int kMaxListedQuiesceProblems = 10;

// Polls until quiesced or past the timeout; records which in `result` and `findings`.
Poll WaitForQuiescence(const std::vector<ClusterEndpoint>& clusters, Clients& clients,
                       const CheckOptions& options, CheckResult& result, Findings& findings) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + options.quiesce_timeout;
  std::optional<std::vector<std::optional<DigestList>>> previous;
  for (;;) {
    Poll poll = PollClusters(clusters, clients, options.namespace_name);
    const bool settled = poll.problems.empty();
    if (settled && previous == poll.digests) {
      result.quiesced = true;
      result.quiesce_time = absl::Now() - start;
      return poll;
    }
    if (settled) {
      previous = poll.digests;
    } else {
      previous.reset();
    }
    if (absl::Now() >= deadline) {
      result.quiesce_time = absl::Now() - start;
      std::vector<std::string> shown(
          poll.problems.begin(),
          poll.problems.begin() +
              std::min<size_t>(poll.problems.size(), kMaxListedQuiesceProblems));
      findings.Add(
          kInvariantQuiesced, "", "",
          absl::StrCat(
              "replication did not quiesce within ", absl::FormatDuration(options.quiesce_timeout),
              ": ",
              settled ? "the digests still changed between polls" : absl::StrJoin(shown, "; "),
              poll.problems.size() > shown.size()
                  ? absl::StrCat(" (and ", poll.problems.size() - shown.size(), " more)")
                  : ""));
      return poll;
    }
    absl::SleepFor(kQuiescePollInterval);
  }
}

// Which cluster owns each version, by the failover histories of the namespace's records.
struct VersionOwners {
  std::map<int64_t, std::set<std::string>> owners;
  bool complete = true;  // no record's history was truncated to kMaxFailoverHistory entries
};

// Reads the namespace record from every cluster: "converged" for the record itself (active
// cluster, failover version, state); returns who owns which version.
absl::StatusOr<VersionOwners> CheckNamespaceRecords(const std::vector<ClusterEndpoint>& clusters,
                                                    Clients& clients, const CheckOptions& options,
                                                    Findings& findings) {
  VersionOwners result;
  std::map<int64_t, std::set<std::string>>& owners = result.owners;
  std::optional<std::pair<size_t, NamespaceRecord>> reference;
  for (size_t i = 0; i < clusters.size(); ++i) {
    NamespaceRecord record;
    absl::Status s =
        Get(clients[i], "/v1/namespaces/" + QueryEscape(options.namespace_name), record);
    if (absl::IsNotFound(s)) {
      findings.Add(kInvariantConverged, clusters[i].name, "",
                   "the namespace is not registered here");
      continue;
    }
    if (!s.ok()) return s;
    auto add = [&owners](int64_t version, const std::string& cluster) {
      if (version > 0 && !cluster.empty()) owners[version].insert(cluster);
    };
    add(record.failover_version(), record.active_cluster());
    for (const FailoverEvent& event : record.failover_history()) {
      add(event.from_version(), event.from_cluster());
      add(event.failover_version(), event.to_cluster());
    }
    if (record.failover_history_size() >= kMaxFailoverHistory) result.complete = false;
    if (!reference) {
      reference.emplace(i, record);
    } else if (record.active_cluster() != reference->second.active_cluster() ||
               record.failover_version() != reference->second.failover_version() ||
               record.state() != reference->second.state()) {
      findings.Add(kInvariantConverged, clusters[i].name, "",
                   absl::StrCat("namespace record: active ", record.active_cluster(), " v",
                                record.failover_version(), " ", NamespaceState_Name(record.state()),
                                "; on ", clusters[reference->first].name, ": active ",
                                reference->second.active_cluster(), " v",
                                reference->second.failover_version(), " ",
                                NamespaceState_Name(reference->second.state())));
    }
  }
  return result;
}

// "one_writer_per_version": the failover history gives each version one owner, the ledger has
// each version acknowledged by its owner alone, and every branch's versions were activated.
// Fills result.version_owners.
void CheckOneWriterPerVersion(const VersionOwners& known, const std::vector<AckedWrite>& ledger,
                              const std::map<int64_t, std::string>& versions_on_branches,
                              CheckResult& result, Findings& findings) {
  const std::map<int64_t, std::set<std::string>>& owners = known.owners;
  for (const auto& [version, names] : owners) {
    result.version_owners[version] = absl::StrJoin(names, ",");
    if (names.size() > 1) {
      findings.Add(kInvariantOneWriterPerVersion, absl::StrJoin(names, ","), "",
                   absl::StrCat("the failover history gives version ", version, " to ",
                                absl::StrJoin(names, " and ")));
    }
  }
  // From the ledger: who acknowledged each version.
  std::map<int64_t, std::map<std::string, std::vector<const AckedWrite*>>> acked;
  for (const AckedWrite& write : ledger) acked[write.version][write.cluster].push_back(&write);
  for (const auto& [version, by_cluster] : acked) {
    std::vector<std::string> parts;
    for (const auto& [cluster, writes] : by_cluster) {
      parts.push_back(absl::StrCat(cluster, " (", writes.size(), " writes)"));
    }
    if (by_cluster.size() > 1) {
      std::vector<std::string> names;
      for (const auto& [cluster, writes] : by_cluster) names.push_back(cluster);
      findings.Add(kInvariantOneWriterPerVersion, absl::StrJoin(names, ","), "",
                   absl::StrCat("version ", version, " was acknowledged by ",
                                absl::StrJoin(parts, " and ")));
    }
    auto owner = owners.find(version);
    if (owner == owners.end()) continue;
    for (const auto& [cluster, writes] : by_cluster) {
      if (owner->second.contains(cluster)) continue;
      const AckedWrite& example = *writes.front();
      findings.Add(
          kInvariantOneWriterPerVersion, cluster,
          absl::StrCat(example.workflow_id, "/", example.run_id),
          absl::StrCat(cluster, " acknowledged ", writes.size(), " writes at version ", version,
                       ", which the failover history gives to ", absl::StrJoin(owner->second, ","),
                       " (e.g. event ", example.event_id, ", request ", example.request_id, ")"));
    }
  }
  if (known.complete && !owners.empty()) {
    for (const auto& [version, run] : versions_on_branches) {
      if (owners.contains(version)) continue;
      findings.Add(kInvariantOneWriterPerVersion, "", run,
                   absl::StrCat("events at version ", version,
                                " are on a branch, but no failover of the namespace activated it"));
    }
  }
}

// "dlq_explained"; fills result.dlq_entries.
absl::Status CheckDlq(const std::vector<ClusterEndpoint>& clusters, Clients& clients,
                      const CheckOptions& options, CheckResult& result, Findings& findings) {
  for (size_t i = 0; i < clusters.size(); ++i) {
    const std::string& name = clusters[i].name;
    StatusResponse status;
    if (absl::Status s = Get(clients[i], "/v1/status", status); !s.ok()) return s;
    ListParkedResponse dlq;
    if (absl::Status s = Get(clients[i], absl::StrCat("/v1/dlq?limit=", kDlqListLimit), dlq);
        !s.ok()) {
      return s;
    }
    result.dlq_entries[name] = std::max<int64_t>(status.parked_tasks(), dlq.tasks_size());
    for (const ParkedTask& task : dlq.tasks()) {
      const std::string reason = ParkReason_Name(task.reason());
      if (options.allowed_dlq_reasons.contains(reason)) continue;
      findings.Add(
          kInvariantDlqExplained, name,
          task.has_workflow()
              ? absl::StrCat(task.workflow().workflow_id(), "/", task.workflow().run_id())
              : "",
          absl::StrCat("DLQ entry #", task.sequence(), " from ", task.source_cluster(), " shard ",
                       task.shard(), " offset ", task.kafka_offset(), " ", reason,
                       task.awaiting_resend() ? " (awaiting resend)" : "", ": ", task.error()));
    }
    if (status.parked_tasks() > dlq.tasks_size()) {
      findings.Add(
          kInvariantDlqExplained, name, "",
          absl::StrCat(status.parked_tasks() - dlq.tasks_size(), " DLQ entries beyond the first ",
                       kDlqListLimit, " cannot be listed, so their reasons are unknown"));
    }
  }
  return absl::OkStatus();
}

// Reads every run from every cluster (kFetchThreads at a time) and checks it.
absl::Status CheckRuns(const std::vector<ClusterEndpoint>& clusters, const CheckOptions& options,
                       const std::vector<RunKey>& runs,
                       const std::map<RunKey, std::vector<const AckedWrite*>>& acks_by_run,
                       RunReport& total) {
  std::vector<std::string> names;
  for (const ClusterEndpoint& c : clusters) names.push_back(c.name);
  std::atomic<size_t> next{0};
  std::mutex mu;
  absl::Status error;
  auto worker = [&] {
    Clients clients(clusters, options.bearer_token);
    RunReport local;
    static const std::vector<const AckedWrite*> kNoAcks;
    for (size_t k = next++; k < runs.size(); k = next++) {
      const RunKey& key = runs[k];
      std::vector<std::optional<IndexedHistory>> copies(clusters.size());
      for (size_t i = 0; i < clusters.size(); ++i) {
        GetHistoryResponse history;
        absl::Status s =
            Get(clients[i],
                absl::StrCat("/v1/history?namespace=", QueryEscape(options.namespace_name),
                             "&workflow_id=", QueryEscape(key.workflow_id),
                             "&run_id=", QueryEscape(key.run_id)),
                history);
        if (s.ok()) {
          copies[i].emplace(std::move(history));
        } else if (!absl::IsNotFound(s)) {
          std::lock_guard<std::mutex> lock(mu);
          if (error.ok()) {
            error = absl::Status(s.code(), absl::StrCat("reading ", RunName(key), " from ",
                                                        names[i], ": ", s.message()));
          }
          next = runs.size();  // stop every worker: the check cannot be made
          return;
        }
      }
      auto acks = acks_by_run.find(key);
      CheckRun(key, names, copies, acks == acks_by_run.end() ? kNoAcks : acks->second,
               options.allow_lost_appends, local);
    }
    std::lock_guard<std::mutex> lock(mu);
    total.findings.Merge(std::move(local.findings));
    total.forked += local.forked;
    total.events += local.events;
    total.reapplied_events += local.reapplied_events;
    total.lost_appends += local.lost_appends;
    total.signals_on_losing += local.signals_on_losing;
    total.signals_reapplied += local.signals_reapplied;
    for (std::string& lost : local.lost) total.lost.push_back(std::move(lost));
    for (const auto& [version, run] : local.versions) {
      auto [it, inserted] = total.versions.try_emplace(version, run);
      if (!inserted && run < it->second) it->second = run;  // the same example whatever the order
    }
  };
  std::vector<std::thread> threads;
  const size_t thread_count = std::min<size_t>(kFetchThreads, std::max<size_t>(runs.size(), 1));
  for (size_t t = 0; t < thread_count; ++t) threads.emplace_back(worker);
  for (std::thread& thread : threads) thread.join();
  return error;
}

}  // namespace

absl::StatusOr<CheckResult> WaitAndCheck(const std::vector<ClusterEndpoint>& clusters,
                                         const std::vector<AckedWrite>& ledger,
                                         const CheckOptions& options) {
  if (clusters.empty())
    return absl::InvalidArgumentError("WaitAndCheck needs at least one cluster");
  CheckResult result;
  result.namespace_name = options.namespace_name;
  for (const ClusterEndpoint& c : clusters) result.clusters.push_back(c.name);
  Findings findings;
  Clients clients(clusters, options.bearer_token);

  const Poll last = WaitForQuiescence(clusters, clients, options, result, findings);
  std::set<RunKey> run_set;
  for (size_t i = 0; i < clusters.size(); ++i) {
    if (!last.digests[i]) {
      return absl::UnavailableError(absl::StrCat("cannot read the digests of ", clusters[i].name,
                                                 ": ", last.error.ToString()));
    }
    for (const auto& [workflow, run, next_event_id, digest, current] : *last.digests[i]) {
      run_set.insert({workflow, run});
    }
  }
  std::map<RunKey, std::vector<const AckedWrite*>> acks_by_run;
  for (const AckedWrite& write : ledger) {
    acks_by_run[{write.workflow_id, write.run_id}].push_back(&write);
    run_set.insert({write.workflow_id, write.run_id});
    ++result.acked_writes;
    ++(write.kind == AckedWrite::Kind::kSignal ? result.acked_signals : result.acked_appends);
  }
  const std::vector<RunKey> runs(run_set.begin(), run_set.end());
  RunReport report;
  if (absl::Status s = CheckRuns(clusters, options, runs, acks_by_run, report); !s.ok()) return s;
  result.workflows = static_cast<int64_t>(runs.size());
  result.workflows_forked = report.forked;
  result.events = report.events;
  result.reapplied_events = report.reapplied_events;
  result.appends_on_losing_branches = report.lost_appends;
  result.signals_on_losing_branches = report.signals_on_losing;
  result.signals_reapplied = report.signals_reapplied;
  std::sort(report.lost.begin(), report.lost.end());
  for (size_t i = 0; i < report.lost.size() && i < kMaxListedLostAppends; ++i) {
    result.lost_appends.push_back(report.lost[i]);
  }
  findings.Merge(std::move(report.findings));

  absl::StatusOr<VersionOwners> owners =
      CheckNamespaceRecords(clusters, clients, options, findings);
  if (!owners.ok()) return owners.status();
  CheckOneWriterPerVersion(*owners, ledger, report.versions, result, findings);
  if (absl::Status s = CheckDlq(clusters, clients, options, result, findings); !s.ok()) return s;
  findings.Into(result);
  return result;
}

std::string CheckResult::ToJson() const {
  using google::protobuf::Struct;
  using google::protobuf::Value;
  Struct root;
  auto& f = *root.mutable_fields();
  f["passed"].set_bool_value(passed());
  f["namespace"].set_string_value(namespace_name);
  for (const std::string& c : clusters) {
    f["clusters"].mutable_list_value()->add_values()->set_string_value(c);
  }
  f["clusters"].mutable_list_value();  // [] when there are none
  f["quiesced"].set_bool_value(quiesced);
  f["quiesce_seconds"].set_number_value(absl::ToDoubleSeconds(quiesce_time));
  auto& counts = *f["counts"].mutable_struct_value()->mutable_fields();
  const std::pair<const char*, int64_t> numbers[] = {
      {"workflows", workflows},
      {"workflows_forked", workflows_forked},
      {"events", events},
      {"reapplied_events", reapplied_events},
      {"acked_writes", acked_writes},
      {"acked_appends", acked_appends},
      {"acked_signals", acked_signals},
      {"appends_on_losing_branches", appends_on_losing_branches},
      {"signals_on_losing_branches", signals_on_losing_branches},
      {"signals_reapplied", signals_reapplied},
  };
  for (const auto& [name, value] : numbers) {
    counts[name].set_number_value(static_cast<double>(value));
  }
  auto& dlq = *f["dlq_entries"].mutable_struct_value()->mutable_fields();
  for (const auto& [cluster, n] : dlq_entries) {
    dlq[cluster].set_number_value(static_cast<double>(n));
  }
  auto& owners = *f["version_owners"].mutable_struct_value()->mutable_fields();
  for (const auto& [version, owner] : version_owners) {
    owners[absl::StrCat(version)].set_string_value(owner);
  }
  auto& by_invariant = *f["violation_counts"].mutable_struct_value()->mutable_fields();
  for (const auto& [invariant, n] : violation_counts) {
    by_invariant[invariant].set_number_value(static_cast<double>(n));
  }
  f["violations"].mutable_list_value();
  for (const Violation& v : violations) {
    auto& fields = *f["violations"]
                        .mutable_list_value()
                        ->add_values()
                        ->mutable_struct_value()
                        ->mutable_fields();
    fields["invariant"].set_string_value(v.invariant);
    fields["cluster"].set_string_value(v.cluster);
    fields["workflow"].set_string_value(v.workflow);
    fields["detail"].set_string_value(v.detail);
  }
  f["lost_appends"].mutable_list_value();
  for (const std::string& lost : lost_appends) {
    f["lost_appends"].mutable_list_value()->add_values()->set_string_value(lost);
  }
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(root, &json).ok()) return "{}";
  return json;
}

std::string CheckResult::Summary() const {
  std::vector<std::string> violated;
  for (const auto& [invariant, n] : violation_counts) {
    violated.push_back(absl::StrCat(invariant, " (", n, ")"));
  }
  std::string out = absl::StrCat(
      "chaos check of namespace '", namespace_name, "' on ", absl::StrJoin(clusters, ", "), ": ",
      passed() ? "PASSED" : absl::StrCat("FAILED; violated: ", absl::StrJoin(violated, ", ")),
      "\n");
  absl::StrAppend(&out, quiesced ? "  quiesced in " : "  NOT quiesced after ",
                  absl::FormatDuration(absl::Trunc(quiesce_time, absl::Milliseconds(1))), "\n");
  absl::StrAppend(&out, "  workflows: ", workflows, " runs (", workflows_forked, " forked), ",
                  events, " events on current branches (", reapplied_events,
                  " reapplied copies)\n");
  absl::StrAppend(&out, "  acknowledged: ", acked_writes, " writes (", acked_appends, " appends, ",
                  acked_signals, " signals)\n");
  absl::StrAppend(&out, "  losing branches: ", appends_on_losing_branches,
                  " acknowledged appends lost (RPO), ", signals_on_losing_branches,
                  " acknowledged signals, ", signals_reapplied, " of them reapplied\n");
  std::vector<std::string> dlq;
  for (const auto& [cluster, n] : dlq_entries) dlq.push_back(absl::StrCat(cluster, " ", n));
  absl::StrAppend(&out, "  DLQ entries: ", dlq.empty() ? "-" : absl::StrJoin(dlq, ", "), "\n");
  for (const std::string& lost : lost_appends) absl::StrAppend(&out, "  lost: ", lost, "\n");
  for (const Violation& v : violations) {
    absl::StrAppend(&out, "  [", v.invariant, "]", v.cluster.empty() ? "" : " " + v.cluster,
                    v.workflow.empty() ? "" : " " + v.workflow, ": ", v.detail, "\n");
  }
  for (const auto& [invariant, n] : violation_counts) {
    if (n > kMaxListedViolationsPerInvariant) {
      absl::StrAppend(&out, "  [", invariant, "] ... and ", n - kMaxListedViolationsPerInvariant,
                      " more not listed\n");
    }
  }
  return out;
}

}  // namespace xdc::chaos
