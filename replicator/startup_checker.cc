#include "replicator/startup_checker.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "protocol/config.h"
#include "protocol/failover_version.h"
#include "protocol/handover.h"
#include "replicator/api_errors.h"
#include "replicator/logger.h"

namespace xdc {
namespace {

std::string RandomProbeId() {
  absl::BitGen gen;
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(gen));
}

absl::Status Refused(const std::string& message, int retry_after_ms) {
  absl::Status s = absl::UnavailableError(message);
  s.SetPayload(kRetryAfterMsPayload, absl::Cord(absl::StrCat(retry_after_ms)));
  MarkRetryable(s);
  return s;
}

}  // namespace

StartupChecker::StartupChecker(const DaemonConfig& config, const Tunables& tunables, Store& store,
                               NamespaceRegistry& namespaces, Clock clock, Io io)
    : config_(config),
      tunables_(tunables),
      store_(store),
      namespaces_(namespaces),
      clock_(std::move(clock)),
      io_(std::move(io)),
      probe_id_(RandomProbeId()) {}

StartupChecker::~StartupChecker() { Stop(); }

void StartupChecker::Start() {
  std::set<std::string> members;
  for (const NamespaceRecord& record : namespaces_.List()) {
    if (record.active_cluster() != config_.cluster_name()) continue;
    for (const std::string& member : record.clusters()) {
      if (member != config_.cluster_name()) members.insert(member);
    }
  }
  absl::MutexLock lock(&mu_);
  check_.set_incarnation(store_.incarnation());
  check_.set_started_unix_micros(clock_());
  if (members.empty()) {
    check_.set_state(StartupCheck::STATE_NOT_NEEDED);
    check_.set_outcome("no namespace active here has another member: nothing to ask");
    return;
  }
  check_.set_state(StartupCheck::STATE_WAITING);
  awaited_ = std::move(members);
  for (const std::string& peer : awaited_) check_.add_waiting_for(peer);
  log::Write(log::Level::kInfo, "startup_check.waiting",
             absl::StrFormat("store incarnation %d: writes to namespaces active here wait until "
                             "%s answer what they hold of this cluster (docs/control-plane.md"
                             "#startup-check)",
                             store_.incarnation(), absl::StrJoin(awaited_, ", ")));
  thread_ = std::thread([this] { Run(); });
}

void StartupChecker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool StartupChecker::Complete() const { return awaited_.empty() && tails_.has_value(); }

void StartupChecker::Run() {
  bool tail_error_logged = false;
  while (true) {
    bool need_tails = false;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ || check_.state() != StartupCheck::STATE_WAITING) return;
      need_tails = !tails_.has_value();
    }
    if (need_tails) {
      absl::StatusOr<std::vector<PublishedTail>> tails = io_.read_tails();
      if (tails.ok()) {
        absl::MutexLock lock(&mu_);
        tails_ = *std::move(tails);
      } else if (!tail_error_logged) {
        log::Write(log::Level::kWarning, "startup_check.kafka",
                   absl::StrFormat("cannot read the tail of our history topic yet (retrying): %s",
                                   tails.status().ToString()));
        tail_error_logged = true;
      }
    }
    ControlMessage probe;
    probe.mutable_startup_probe()->set_incarnation(store_.incarnation());
    probe.mutable_startup_probe()->set_probe_id(probe_id_);
    io_.send_control(std::move(probe));

    std::vector<StartupReport> reports;
    std::vector<PublishedTail> tails;
    {
      absl::MutexLock lock(&mu_);
      auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || check_.state() != StartupCheck::STATE_WAITING || Complete();
      };
      mu_.AwaitWithTimeout(absl::Condition(&done),
                           absl::Milliseconds(tunables_.startup_probe_interval_ms));
      if (stopping_ || check_.state() != StartupCheck::STATE_WAITING || !Complete()) continue;
      for (auto& [peer, report] : reports_) reports.push_back(report);
      tails = *tails_;
    }
    if (absl::Status s = Decide(reports, tails); !s.ok()) {
      log::Write(
          log::Level::kError, "startup_check.failed",
          absl::StrFormat("acting on the startup check failed (retrying): %s", s.ToString()));
    }
  }
}

void StartupChecker::OnReport(const std::string& peer, const StartupReport& report) {
  if (!ReportAnswersProbe(report, config_.cluster_name(), store_.incarnation(), probe_id_)) return;
  absl::MutexLock lock(&mu_);
  if (check_.state() != StartupCheck::STATE_WAITING) return;
  reports_[peer] = report;
  awaited_.erase(peer);
  check_.clear_waiting_for();
  for (const std::string& waiting : awaited_) check_.add_waiting_for(waiting);
}

absl::Status StartupChecker::Decide(const std::vector<StartupReport>& reports,
                                    const std::vector<PublishedTail>& tails) {
  StartupSelf self;
  self.cluster = config_.cluster_name();
  self.incarnation = store_.incarnation();
  for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
    self.outbox_next_task_ids.push_back(store_.OutboxNextTaskId(shard));
  }
  const ClusterConfig* ours = FindCluster(config_, config_.cluster_name());
  self.initial_failover_version = ours->initial_failover_version();
  self.failover_version_increment = config_.failover_version_increment();
  for (const NamespaceRecord& record : namespaces_.List()) {
    if (record.active_cluster() == config_.cluster_name()) {
      self.active_versions[record.id()] = record.failover_version();
    }
  }
  const StartupVerdict verdict = JudgeStartup(self, reports, tails);
  if (!verdict.restored) {
    {
      absl::MutexLock lock(&mu_);
      check_.set_state(StartupCheck::STATE_PASSED);
      check_.set_outcome(absl::StrFormat(
          "%d peer(s) answered and our history topic was read: this store holds its latest "
          "state",
          reports.size()));
    }
    log::Write(log::Level::kInfo, "startup_check.passed",
               "every peer answered: this store holds its latest state; writes are accepted");
    io_.writes_allowed();
    return absl::OkStatus();
  }
  log::Write(log::Level::kError, "startup_check.restored",
             absl::StrFormat("this store is older than what this cluster published (%s): it was "
                             "restored from a backup or lost synced writes. Moving every "
                             "namespace active here to a fresh failover version; see "
                             "runbooks/recover-crashed-cluster.md",
                             verdict.why));
  const VersionLayout layout{&config_.clusters(), config_.failover_version_increment()};
  bool floors_written = false;
  std::vector<std::string> moved;
  std::map<std::string, int64_t> awaiting;
  for (const auto& [namespace_id, version_floor] : verdict.version_floors) {
    const int64_t floor = version_floor;  // a lambda below captures it (not a structured binding)
    int64_t reported_elsewhere = 0;       // a newer version of another cluster a peer holds
    for (const StartupReport& report : reports) {
      auto it = report.failover_versions().find(namespace_id);
      if (it != report.failover_versions().end() &&
          it->second > self.active_versions[namespace_id] &&
          !OwnsVersion(it->second, self.initial_failover_version,
                       self.failover_version_increment)) {
        reported_elsewhere = std::max(reported_elsewhere, it->second);
      }
    }
    if (reported_elsewhere > 0) {
      awaiting[namespace_id] = reported_elsewhere;
      continue;
    }
    absl::StatusOr<NamespaceRecord> changed = namespaces_.Change(
        namespace_id,
        [&](const NamespaceRecord& current,
            StoreWrite& write) -> absl::StatusOr<std::optional<NamespaceRecord>> {
          if (current.active_cluster() != config_.cluster_name()) return std::nullopt;
          absl::StatusOr<NamespaceRecord> next = MoveToFreshVersion(
              current, config_.cluster_name(), layout, floor, clock_(), verdict.why);
          if (!next.ok()) return next.status();
          if (!floors_written) write.task_id_floors = verdict.task_id_floors;
          return std::optional<NamespaceRecord>(*std::move(next));
        });
    if (!changed.ok()) return changed.status();
    if (changed->active_cluster() == config_.cluster_name() &&
        changed->failover_history_size() > 0 &&
        changed->failover_history().rbegin()->kind() == FAILOVER_KIND_RESTORED_STORE) {
      floors_written = true;
      moved.push_back(
          absl::StrFormat("%s to version %d", changed->name(), changed->failover_version()));
    }
  }
  if (!floors_written) {
    StoreWrite write;
    write.task_id_floors = verdict.task_id_floors;
    if (absl::StatusOr<int64_t> s = store_.CommitWrite(write); !s.ok()) return s.status();
  }
  const std::string outcome = absl::StrFormat(
      "restored store: %s. Moved %s; task ids continue from %s%s", verdict.why,
      moved.empty() ? "no namespace" : absl::StrJoin(moved, ", "),
      absl::StrJoin(verdict.task_id_floors, ","),
      awaiting.empty() ? ""
                       : absl::StrFormat("; %d namespace(s) moved to another cluster meanwhile: "
                                         "refused until their newer record arrives",
                                         awaiting.size()));
  {
    absl::MutexLock lock(&mu_);
    awaiting_record_ = std::move(awaiting);
    check_.set_state(StartupCheck::STATE_RESTORED);
    check_.set_outcome(outcome);
  }
  log::Write(log::Level::kWarning, "startup_check.moved", outcome);
  io_.writes_allowed();
  return absl::OkStatus();
}

absl::Status StartupChecker::Gate(const NamespaceRecord& ns) const {
  absl::MutexLock lock(&mu_);
  if (check_.state() == StartupCheck::STATE_WAITING &&
      ns.active_cluster() == config_.cluster_name()) {
    const int64_t waited_s = (clock_() - check_.started_unix_micros()) / 1000000;
    return Refused(
        absl::StrFormat("cluster '%s' started %d s ago and has not yet confirmed that its store "
                        "holds its latest state: waiting for %s to answer its startup probe "
                        "(docs/control-plane.md#startup-check); retry in %d ms",
                        config_.cluster_name(), waited_s,
                        awaited_.empty() ? std::string("the tail of its own history topic")
                                         : absl::StrJoin(awaited_, ", "),
                        tunables_.startup_probe_interval_ms),
        tunables_.startup_probe_interval_ms);
  }
  if (auto it = awaiting_record_.find(ns.id());
      it != awaiting_record_.end() && ns.failover_version() < it->second) {
    return Refused(absl::StrFormat("namespace '%s' is at failover version %d on a peer, newer than "
                                   "this cluster's restored record (%d): waiting for that record; "
                                   "retry in %d ms",
                                   ns.name(), it->second, ns.failover_version(),
                                   tunables_.startup_probe_interval_ms),
                   tunables_.startup_probe_interval_ms);
  }
  return absl::OkStatus();
}

absl::StatusOr<StartupCheck> StartupChecker::Skip(const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    if (check_.state() != StartupCheck::STATE_WAITING) {
      return absl::FailedPreconditionError(
          absl::StrFormat("the startup check is not waiting (state %s): nothing to skip",
                          StartupCheck::State_Name(check_.state())));
    }
    check_.set_state(StartupCheck::STATE_SKIPPED);
    check_.set_outcome(absl::StrFormat("skipped by an operator (%s) while waiting for %s", reason,
                                       absl::StrJoin(awaited_, ", ")));
  }
  log::Write(log::Level::kWarning, "startup_check.skipped", Status().outcome());
  io_.writes_allowed();
  return Status();
}

StartupCheck StartupChecker::Status() const {
  absl::MutexLock lock(&mu_);
  return check_;
}

}  // namespace xdc
