// Every command a runbook tells an operator to run is run here, by xdcctl and curl as processes,
// against live daemons, in the situation the runbook describes, and its outcome is checked.
//
// The runbooks' commands are read from runbooks/*.md (the ```sh blocks, and `$ ` lines of
// ```console blocks) and reduced to their shape: the program, the xdcctl subcommand and the
// flags given (addresses, names, ids and other values left out; for curl, the path). The test
// records the shape of every command it runs; at the end, every runbook's shapes must be among
// them. A runbook that gains a command no test runs fails this test, naming the command and file.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replicator/kafka_client.h"
#include "tests/runbook_commands.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Runbooks whose commands another test runs (and checks with ExpectRunbookCommandsRun), and that
// test: their situations need more than this test sets up.
const std::map<std::string, std::string> kRunbooksRunElsewhere = {
    {"standby-beyond-retention.md",
     "RetentionTest.AStandbyBackAfterRetentionExpiredIsRepairedByContentVerification"},
    {"add-cluster.md",
     "MigrationE2eTest.AnOperatorMigratesANamespaceWithTenThousandWorkflowsUnderLoad"},
    {"migration-backfill.md",
     "MigrationE2eTest.AnOperatorMigratesANamespaceWithTenThousandWorkflowsUnderLoad"},
    {"migration.md",
     "MigrationE2eTest.AnOperatorMigratesANamespaceWithTenThousandWorkflowsUnderLoad"},
};

TEST(RunbookShapeTest, CommandsReduceToTheirProgramSubcommandAndFlags) {
  EXPECT_EQ(Shape("xdcctl --address $STANDBY dlq retry 2 3"), "xdcctl dlq retry");
  EXPECT_EQ(Shape("xdcctl --address $STANDBY dlq retry --all   # comment"),
            "xdcctl dlq retry --all");
  EXPECT_EQ(Shape("xdcctl --address $ACTIVE namespace failover orders --to west --force"),
            "xdcctl namespace failover --force --to");
  EXPECT_EQ(Shape("xdcctl --address $STANDBY --json dlq --limit 1000"),
            "xdcctl dlq --json --limit");
  EXPECT_EQ(Shape("xdcctl --address $CLUSTER status | tail -n 3"), "xdcctl status");
  EXPECT_EQ(Shape("curl -s http://$STANDBY/metrics | grep '^xdc_applier_halted'"), "curl /metrics");
  EXPECT_EQ(Shape("df -h /var/lib/xdc"), "");
  EXPECT_EQ(Shape("for c in $EAST $WEST; do xdcctl --address $c cluster remove north; done"),
            "xdcctl cluster remove");
  for (const auto& [runbook, test] : kRunbooksRunElsewhere) {
    EXPECT_TRUE(RunbookFiles().contains(runbook)) << runbook << " (run by " << test << ")";
  }
}

class RunbookTest : public TwoClustersTest {
 protected:
  // A message that is not a frame on `cluster`'s history partition 0: its peer parks it in the
  // DLQ as a corrupt message (corrupt-messages.md, dlq.md).
  void ProduceGarbage(const std::string& cluster) {
    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
        east_->kafka_bootstrap(), "runbook-test", [](uint64_t, const absl::Status&) {});
    ASSERT_TRUE(producer.ok()) << producer.status();
    ASSERT_TRUE(
        (*producer)->Produce(HistoryTopic(cluster, TestTopicPrefix()), 0, "not a frame", 1).ok());
    ASSERT_TRUE((*producer)->Flush(10000).ok());
  }

  // The sequence numbers in `xdcctl dlq list` output (lines "#SEQUENCE from ...").
  static std::vector<std::string> DlqSequences(const std::string& listing) {
    std::vector<std::string> sequences;
    for (absl::string_view line : absl::StrSplit(listing, '\n')) {
      if (!absl::ConsumePrefix(&line, "#")) continue;
      const size_t digits = line.find_first_not_of("0123456789");
      if (digits > 0 && digits != absl::string_view::npos) {
        sequences.emplace_back(line.substr(0, digits));
      }
    }
    return sequences;
  }

  Operator op_;
};

TEST_F(RunbookTest, EveryRunbookCommandRunsAgainstLiveDaemons) {
  const std::string east = east_->http_address();
  const std::string west = west_->http_address();

  // --- register-namespace.md ---
  op_.Xdcctl(east, "namespace register payments --clusters east,west --active east");
  ASSERT_TRUE(op_.XdcctlUntil(west, "namespace get payments", "active=east"));
  EXPECT_THAT(op_.Xdcctl(west,
                         "append --namespace orders --workflow-id gate-check "
                         "--expected-next-event-id 1 --event WORKFLOW_EXECUTION_STARTED",
                         1),
              HasSubstr("east"));
  op_.Xdcctl(east,
             "append --namespace orders --workflow-id replication-check "
             "--expected-next-event-id 1 --event WORKFLOW_EXECUTION_STARTED");
  EXPECT_THAT(op_.Xdcctl(east, "compare --namespace orders --peer " + west + " --wait 30"),
              HasSubstr("converged"));
  EXPECT_THAT(op_.Xdcctl(east, "namespace list"), HasSubstr("payments"));

  // --- reading state: status, metrics, readiness, histories (most runbooks) ---
  EXPECT_THAT(op_.Xdcctl(west, "status"), HasSubstr("total lag"));
  EXPECT_THAT(op_.Xdcctl(east, "status"), HasSubstr("total lag"));
  EXPECT_THAT(op_.Curl(west, "/metrics"), HasSubstr("xdc_applier_halted{"));
  EXPECT_THAT(op_.Curl(east, "/readyz"), HasSubstr("kafka"));
  EXPECT_THAT(op_.Xdcctl(east, "compare --namespace orders --peer " + west),
              HasSubstr("converged"));
  EXPECT_THAT(op_.Xdcctl(east, "compare --namespace orders --peer " + west + " --wait 60"),
              HasSubstr("converged"));
  for (const std::string& address : {east, west}) {
    EXPECT_THAT(op_.Xdcctl(address, "history --namespace orders --workflow-id replication-check"),
                HasSubstr("workflow replication-check"));
  }

  // --- graceful-handover.md, failback.md ---
  EXPECT_THAT(op_.Xdcctl(east, "namespace failover orders --to west --timeout 30s"),
              HasSubstr("handover complete"));
  EXPECT_THAT(op_.Xdcctl(west, "namespace describe orders"), HasSubstr("active=west"));
  EXPECT_THAT(op_.Xdcctl(west, "namespace history orders"), HasSubstr("graceful"));
  EXPECT_THAT(op_.Xdcctl(east, "compare --namespace orders --peer " + west + " --wait 60"),
              HasSubstr("converged"));
  EXPECT_THAT(op_.Xdcctl(west, "namespace failover orders --to east --timeout 30s"),
              HasSubstr("handover complete"));
  EXPECT_THAT(op_.Xdcctl(east, "namespace history orders"), HasSubstr("west->east"));

  // --- handover-stuck.md: a corrupt message parked on west may hold east's events, so west
  // does not activate; cancel, then force the source itself out of a second handover ---
  ASSERT_NO_FATAL_FAILURE(ProduceGarbage("east"));
  ASSERT_TRUE(op_.XdcctlUntil(west, "dlq list --limit 1000", "PARK_REASON_CORRUPT_MESSAGE"));
  op_.Xdcctl(east, "namespace failover orders --to west --timeout 10m --no-wait");
  EXPECT_THAT(op_.Xdcctl(east, "namespace describe orders"), HasSubstr("HANDOVER"));
  // West shows the proposal once the first of its markers has reached it through Kafka.
  EXPECT_TRUE(op_.XdcctlUntil(west, "namespace describe orders", "here:"));
  EXPECT_THAT(op_.Xdcctl(east, "namespace cancel orders --reason \"west lags, retry tonight\""),
              HasSubstr("handover cancelled by west"));
  EXPECT_THAT(op_.Xdcctl(east, "namespace history orders"), HasSubstr("cancelled"));
  op_.Xdcctl(east, "namespace failover orders --to west --timeout 10m --no-wait");
  EXPECT_THAT(op_.Xdcctl(east, "namespace failover orders --to east --force"), HasSubstr("east"));
  EXPECT_THAT(op_.Xdcctl(east, "namespace describe orders"),
              HasSubstr("state=NAMESPACE_STATE_ACTIVE"));

  // --- forced-failover.md: west takes over; the old active learns it when it hears west ---
  // West must have heard east's forced failover first: a forced failover takes a version above
  // the highest its cluster knows, and one below east's would lose to it when they merge.
  const std::string east_record = op_.Xdcctl(east, "namespace get orders");
  const size_t at = east_record.find("failover_version=");
  ASSERT_NE(at, std::string::npos) << east_record;
  const std::string east_version =
      east_record.substr(at, east_record.find(' ', at) - at);  // "failover_version=N"
  ASSERT_TRUE(op_.XdcctlUntil(west, "namespace get orders", east_version + " "));
  EXPECT_THAT(op_.Xdcctl(west, "namespace failover orders --to west --force"), HasSubstr("west"));
  ASSERT_TRUE(op_.XdcctlUntil(east, "namespace describe orders", "active=west"));
  EXPECT_THAT(op_.Xdcctl(west, "namespace history orders"), HasSubstr("forced"));
  EXPECT_THAT(op_.Xdcctl(west, "compare --namespace orders --peer " + east + " --wait 60"),
              HasSubstr("converged"));
  // What losing branches held, and runs still waiting for reapplication (none fork here:
  // BranchHistoryTest runs the same commands after a split brain).
  EXPECT_THAT(op_.Xdcctl(east, "namespace describe orders"), HasSubstr("record learned at"));
  EXPECT_THAT(
      op_.Xdcctl(west, "history --namespace orders --workflow-id replication-check --branches"),
      HasSubstr("branch 0 (current)"));
  EXPECT_THAT(
      op_.Xdcctl(west, "history --namespace orders --workflow-id replication-check --branch 0"),
      HasSubstr("events of branch 0 (current):"));
  EXPECT_THAT(op_.Xdcctl(east, "status"), Not(HasSubstr("runs reapply_pending")));
  // missing-tasks.md: the active cluster resends what differs (nothing here) and verifies; then
  // the (here: no) missing task ids are declared lost.
  EXPECT_THAT(op_.XdcctlCommand(absl::StrCat("migration verify --namespace orders --source ", west,
                                             " --target ", east, " --repair"),
                                0),
              HasSubstr("IDENTICAL"));
  EXPECT_THAT(op_.Xdcctl(east, "missing-tasks acknowledge --peer west"),
              HasSubstr("none are missing now"));

  // --- dlq.md, corrupt-messages.md, tasks-parked.md: three corrupt messages parked on west ---
  for (int i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(ProduceGarbage("east"));
  ASSERT_TRUE(WaitUntil([&] { return DlqSequences(op_.Xdcctl(west, "dlq list")).size() == 3; }));
  const std::vector<std::string> sequences = DlqSequences(op_.Xdcctl(west, "dlq"));
  ASSERT_EQ(sequences.size(), 3u);
  EXPECT_THAT(op_.Xdcctl(west, "dlq --limit 1000"), HasSubstr("PARK_REASON_CORRUPT_MESSAGE"));
  EXPECT_THAT(op_.Xdcctl(west, "--json dlq --limit 1000"),
              HasSubstr("PARK_REASON_CORRUPT_MESSAGE"));
  EXPECT_THAT(op_.Xdcctl(west, "--json dlq list --limit 10000"), HasSubstr("raw_message"));
  // A corrupt message cannot be applied by a retry: it stays.
  op_.Xdcctl(west, "dlq retry " + sequences[0] + " " + sequences[1]);
  op_.Xdcctl(west, "dlq retry --all");
  EXPECT_EQ(DlqSequences(op_.Xdcctl(west, "dlq list")).size(), 3u);
  op_.Xdcctl(west, "dlq purge " + sequences[0]);
  EXPECT_EQ(DlqSequences(op_.Xdcctl(west, "dlq list")).size(), 2u);
  op_.Xdcctl(west, "dlq purge --all");
  EXPECT_TRUE(DlqSequences(op_.Xdcctl(west, "dlq list")).empty());
  EXPECT_THAT(op_.Curl(west, "/metrics"), HasSubstr("xdc_dlq_entries{"));

  // --- rotate-api-token.md: a daemon with a token refuses the old one, takes the new one ---
  ScopedDir token_dir{"token"};
  // Its own Kafka (embedded, or its own topics on the real broker).
  DaemonConfig config = MakeConfig("east", token_dir.path(), "");
  config.mutable_kafka()->set_topic_prefix(absl::StrCat(TestTopicPrefix(), "xdc-token"));
  const std::string kNew = "new-token-0123456789abcdef";
  config.mutable_api()->set_bearer_token(kNew);
  absl::StatusOr<std::unique_ptr<Daemon>> secured = Daemon::Start(config, Tunables{});
  ASSERT_TRUE(secured.ok()) << secured.status();
  const std::string cluster = (*secured)->http_address();
  EXPECT_THAT(op_.Xdcctl(cluster, "--token old-token-0123456789abcdef dlq retry 0", 1),
              HasSubstr("UNAUTHENTICATED"));
  op_.Xdcctl(cluster, "--token " + kNew + " dlq retry 0");
  EXPECT_THAT(op_.Xdcctl(cluster, "--token " + kNew + " status"), HasSubstr("total lag"));
  EXPECT_THAT(op_.Curl(cluster, "/metrics"), HasSubstr("xdc_api_unauthenticated_total{"));

  // Every command of every runbook was run above, but those of the runbooks other tests run.
  std::set<std::string> runbooks = RunbookFiles();
  for (const auto& [runbook, test] : kRunbooksRunElsewhere) runbooks.erase(runbook);
  ExpectRunbookCommandsRun(op_.shapes(), runbooks);
}

}  // namespace
}  // namespace xdc
