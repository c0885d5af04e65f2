#include "protocol/startup_check.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "protocol/failover_version.h"

namespace xdc {

bool ReportAnswersProbe(const StartupReport& report, const std::string& cluster,
                        int64_t incarnation, const std::string& probe_id) {
  return report.cluster() == cluster && report.incarnation() == incarnation &&
         report.probe_id() == probe_id;
}

StartupReport MakeStartupReport(const std::string& sender, const StartupProbe& probe,
                                const std::vector<ShardApplyProgress>& progress,
                                const std::vector<NamespaceRecord>& records) {
  StartupReport report;
  report.set_cluster(sender);
  report.set_incarnation(probe.incarnation());
  report.set_probe_id(probe.probe_id());
  int64_t highest = 0;
  for (const ShardApplyProgress& shard : progress) {
    highest = std::max(highest, shard.source_incarnation());
    report.add_next_task_ids(shard.task_sequence().next_task_id());
  }
  report.set_highest_incarnation_seen(highest);
  for (const NamespaceRecord& record : records) {
    (*report.mutable_failover_versions())[record.id()] = record.failover_version();
  }
  return report;
}

StartupVerdict JudgeStartup(const StartupSelf& self, const std::vector<StartupReport>& reports,
                            const std::vector<PublishedTail>& tails) {
  StartupVerdict verdict;
  verdict.task_id_floors = self.outbox_next_task_ids;
  verdict.version_floors = self.active_versions;
  std::vector<std::string> evidence;
  auto raise_task_floor = [&](size_t shard, int64_t seen_task_id, const std::string& who) {
    if (shard >= verdict.task_id_floors.size()) return;
    if (seen_task_id + 1 > verdict.task_id_floors[shard]) {
      verdict.task_id_floors[shard] = seen_task_id + 1;
    }
    if (seen_task_id >= self.outbox_next_task_ids[shard]) {
      evidence.push_back(absl::StrFormat("%s holds task %d of shard %d, our outbox is at %d", who,
                                         seen_task_id, shard, self.outbox_next_task_ids[shard]));
    }
  };
  auto check_incarnation = [&](int64_t seen, const std::string& who) {
    if (seen >= self.incarnation) {
      evidence.push_back(absl::StrFormat("%s saw store incarnation %d, this start is %d", who, seen,
                                         self.incarnation));
    }
  };
  for (const StartupReport& report : reports) {
    const std::string who = "a peer";
    check_incarnation(report.highest_incarnation_seen(), "a peer");
    for (int shard = 0; shard < report.next_task_ids_size(); ++shard) {
      // next_task_id is exclusive: the peer holds task next - 1.
      if (report.next_task_ids(shard) > 0) {
        raise_task_floor(static_cast<size_t>(shard), report.next_task_ids(shard) - 1, who);
      }
    }
    for (const auto& [namespace_id, version] : report.failover_versions()) {
      auto ours = verdict.version_floors.find(namespace_id);
      if (ours == verdict.version_floors.end()) continue;  // not active here
      const int64_t recorded = self.active_versions.at(namespace_id);
      if (version > recorded &&
          OwnsVersion(version, self.initial_failover_version, self.failover_version_increment)) {
        evidence.push_back(absl::StrFormat(
            "a peer holds namespace %s at failover version %d of ours, our record is at %d",
            namespace_id, version, recorded));
      }
      ours->second = std::max(ours->second, version);
    }
  }
  for (const PublishedTail& tail : tails) {
    const std::string who = "our history topic";
    check_incarnation(tail.incarnation, who);
    raise_task_floor(static_cast<size_t>(tail.shard), tail.task_id, who);
    for (auto& [namespace_id, floor] : verdict.version_floors) {
      floor = std::max(floor, tail.highest_version);
    }
  }
  verdict.restored = !evidence.empty();
  if (verdict.restored) verdict.why = absl::StrJoin(evidence, "; ");
  return verdict;
}

}  // namespace xdc
