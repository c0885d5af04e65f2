// A standby away longer than Kafka's retention (runbooks/standby-beyond-retention.md): the
// tasks published while it was away are gone from Kafka when it comes back. It notices (missing
// task ids), runs that got a later task recover by resend, runs whose last task was lost stay
// behind until content verification finds and repairs them.
//
// Kafka's retention is simulated exactly with the DeleteRecords admin call, which moves each
// partition's log start offset the way expiring segments do. librdkafka's mock cluster does not
// serve DeleteRecords: the test runs on a real broker (XDC_TEST_KAFKA_BOOTSTRAP, set by
// scripts/test.sh) and is skipped on the mock.
#include <librdkafka/rdkafka.h>

#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replicator/kafka_client.h"
#include "tests/runbook_commands.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kDeleteRecordsTimeoutMs = 15000;
constexpr int kExitDifferences = 3;  // xdcctl migration verify found differences

// Deletes every record of `topic`'s partitions [0, partitions) up to its end, as retention does.
absl::Status DeleteAllRecords(const std::string& bootstrap, const std::string& topic,
                              int partitions) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr) !=
      RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(errstr);
  }
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> rk(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr), rd_kafka_destroy);
  if (rk == nullptr) return absl::InternalError(errstr);
  rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(offsets, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_END;
  }
  rd_kafka_DeleteRecords_t* request = rd_kafka_DeleteRecords_new(offsets);
  rd_kafka_topic_partition_list_destroy(offsets);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk.get());
  rd_kafka_DeleteRecords(rk.get(), &request, 1, nullptr, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, kDeleteRecordsTimeoutMs);
  absl::Status result;
  if (event == nullptr) {
    result = absl::DeadlineExceededError("DeleteRecords timed out");
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result = absl::UnavailableError(rd_kafka_event_error_string(event));
  } else {
    const rd_kafka_topic_partition_list_t* done =
        rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(event));
    for (int i = 0; done != nullptr && i < done->cnt && result.ok(); ++i) {
      if (done->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        result = absl::UnavailableError(absl::StrCat("partition ", done->elems[i].partition, ": ",
                                                     rd_kafka_err2str(done->elems[i].err)));
      }
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_DeleteRecords_destroy(request);
  rd_kafka_queue_destroy(queue);
  return result;
}

class RetentionTest : public TwoClustersTest {
 protected:
  void SetUp() override {
    if (RealKafkaBootstrap().empty()) {
      GTEST_SKIP() << "needs a real Kafka broker (DeleteRecords): set XDC_TEST_KAFKA_BOOTSTRAP, "
                      "as scripts/test.sh does";
    }
    TwoClustersTest::SetUp();
  }
};

TEST_F(RetentionTest, AStandbyBackAfterRetentionExpiredIsRepairedByContentVerification) {
  ASSERT_GT(WriteWorkflows(east_->http_address(), kNamespace, "before", 4), 0);
  WaitForConvergence();

  // West is away; east writes 8 runs, and Kafka's retention then drops all of it.
  StopWest();
  ASSERT_GT(WriteWorkflows(east_->http_address(), kNamespace, "away", 8), 0);
  // The publisher sends after the commit: every task must be in Kafka before retention drops it
  // (a task delivered after the deletion would survive and let west resend its run).
  ASSERT_TRUE(WaitUntil([&] { return PublishedAll(GetStatus(*east_client_)); }));
  ASSERT_TRUE(DeleteAllRecords(east_->kafka_bootstrap(), HistoryTopic("east", TestTopicPrefix()),
                               /*partitions=*/4)
                  .ok());
  // Two of the runs get one more signal after that: their next task shows west the gap.
  for (const char* workflow : {"away-1", "away-3"}) {
    SignalRequest signal;
    signal.set_namespace_(kNamespace);
    signal.set_workflow_id(workflow);
    signal.set_signal_name("after-retention");
    AppendResponse appended;
    ASSERT_TRUE(east_client_->Call("POST", "/v1/signal", &signal, appended).ok());
  }

  ASSERT_NO_FATAL_FAILURE(StartWest());
  ASSERT_TRUE(WaitUntil([&] { return CaughtUp(GetStatus(*west_client_)); }));
  // West saw that task ids are missing: the alert's signal.
  ASSERT_TRUE(WaitUntil([&] { return MissingTasks(GetStatus(*west_client_)) > 0; }));

  // runbooks/standby-beyond-retention.md, as an operator runs it.
  Operator op;
  const std::string active = east_->http_address();
  const std::string standby = west_->http_address();
  EXPECT_THAT(op.Xdcctl(standby, "status"), HasSubstr("total lag 0 tasks"));
  op.Xdcctl(standby, "dlq list");
  // The runs that got a later task were resent whole; the six others are missing on west.
  const std::string compare = absl::StrCat("compare --namespace ", kNamespace, " --peer ", standby);
  std::string differing;
  ASSERT_TRUE(WaitUntil([&] {
    differing = op.Xdcctl(active, compare, Operator::kAnyExitCode);
    return absl::StrContains(differing, "NOT converged: 6 workflows differ");
  })) << differing;
  EXPECT_THAT(differing, Not(HasSubstr("away-1 ")));
  EXPECT_THAT(differing, Not(HasSubstr("away-3 ")));

  const std::string verify = absl::StrCat("migration verify --namespace ", kNamespace, " --source ",
                                          active, " --target ", standby);
  const std::string found = op.XdcctlCommand(verify, kExitDifferences);
  for (int i : {0, 2, 4, 5, 6, 7}) EXPECT_THAT(found, HasSubstr(absl::StrCat("away-", i)));
  EXPECT_THAT(op.XdcctlCommand(verify + " --repair", 0), HasSubstr("IDENTICAL"));
  EXPECT_THAT(op.XdcctlCommand(verify, 0), HasSubstr("IDENTICAL"));
  EXPECT_THAT(op.Xdcctl(active, compare + " --wait 60"), HasSubstr("converged"));
  EXPECT_EQ(WaitForConvergence(), 12u);
  // The lost task ids stay missing until declared lost; then a handover to west completes.
  EXPECT_THAT(op.Xdcctl(standby, "missing-tasks acknowledge --peer east"),
              HasSubstr("none are missing now"));
  EXPECT_THAT(op.Xdcctl(standby, "status"), HasSubstr("declared lost by an operator"));
  EXPECT_THAT(op.Xdcctl(active, absl::StrCat("namespace failover ", kNamespace,
                                             " --to west --timeout 30s")),
              HasSubstr("handover complete"));
  ExpectRunbookCommandsRun(op.shapes(), {"standby-beyond-retention.md"});
}

}  // namespace
}  // namespace xdc
