// The startup check (docs/control-plane.md#startup-check): before an xdcd accepts writes for the
// namespaces active on it, it learns whether its store holds its latest state, or is older (it
// was restored from a backup, or its disk lost a synced write). An older store would write again
// at event ids, failover versions and task ids its lost state already used and published: peers
// would drop the new events as duplicates of the old ones, and the clusters would diverge for
// good without an error anywhere.
//
// Evidence is what others hold of this cluster: each peer that answered the probe (StartupReport:
// the highest store incarnation and task ids it applied from us, and its namespace records), and
// the tail of this cluster's own history topic (what the lost state published: it reaches peers
// later even if they lag). A store is older if any of them shows an incarnation at or above this
// start's, a task id at or above our outbox's next one, or a failover version of ours above our
// record's. Then this cluster moves every namespace active here to a failover version above every
// version anyone reported, and its task ids above every task id anyone reported.
//
// Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "protocol/xdc.pb.h"

namespace xdc {

// What this start knows of itself.
struct StartupSelf {
  std::string cluster;
  int64_t incarnation = 0;                    // this start's (already incremented at open)
  std::vector<int64_t> outbox_next_task_ids;  // per shard: the next task id the store assigns
  // Namespace id -> failover version of the record in our store, for namespaces active here.
  std::map<std::string, int64_t> active_versions;
  int64_t initial_failover_version = 0;  // ours
  int64_t failover_version_increment = 0;
};

// The newest task this cluster's own history topic holds, per shard (none: empty or unread).
struct PublishedTail {
  int32_t shard = 0;
  int64_t task_id = 0;
  int64_t incarnation = 0;
  int64_t highest_version = 0;  // of the task's events and version history
};

struct StartupVerdict {
  bool restored = false;
  std::string why;  // what showed it, for people; empty when not restored
  // Per shard: the task id the outbox must continue from (>= outbox_next_task_ids).
  std::vector<int64_t> task_id_floors;
  // Namespace id -> the highest failover version anyone reported: the fresh version must be above.
  std::map<std::string, int64_t> version_floors;
};

// The verdict from every peer's report and our history topic's tail. Reports for another cluster,
// incarnation or probe id must be filtered out by the caller (ReportAnswersProbe).
[[nodiscard]] StartupVerdict JudgeStartup(const StartupSelf& self,
                                          const std::vector<StartupReport>& reports,
                                          const std::vector<PublishedTail>& tails);

// True if `report` answers our probe: for us, this incarnation, this probe id.
[[nodiscard]] bool ReportAnswersProbe(const StartupReport& report, const std::string& cluster,
                                      int64_t incarnation, const std::string& probe_id);

// A peer's report of what it holds of `probe`'s sender: `progress` per shard of the sender's
// stream (index = shard; absent shards are empty), `records` every namespace record the peer
// holds.
[[nodiscard]] StartupReport MakeStartupReport(const std::string& sender, const StartupProbe& probe,
                                              const std::vector<ShardApplyProgress>& progress,
                                              const std::vector<NamespaceRecord>& records);

}  // namespace xdc
