// Resends and the DLQ, end to end in one process (tests/two_clusters.h): east is active, west a
// standby; fault points (chaos/fault_points.h) make east's publisher lose history tasks, make a
// cluster refuse resend requests, or make DLQ writes fail.
//
//   LostTasks       lost tasks leave gaps; west parks the tasks after them, asks east, east
//                   answers from its store, the parked tasks resume and west converges
//   DeadLetter      a gap nobody can fill is dead-lettered after resend_max_attempts, is not
//                   skipped, and an operator retry puts it back on the automatic path
//   Purge           purging deletes exactly the named entries
//   FailedDlqWrite  a DLQ write that fails halts the applier before its progress passes the task;
//                   after a restart nothing is missing
//
// Fault points are process-global: each test disarms what it armed when it ends (FaultScope).
// Writes that must be accounted for are made one at a time (Ledger), so the test knows the task
// id of every append and so exactly which tasks the publisher lost (task id % 5 == 4).

#include <cstdint>
#include <initializer_list>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "chaos/fault_points.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/message_codec.h"
#include "protocol/shard_hash.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"
#include "replicator/kafka_client.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int32_t kShards = 4;  // MakeConfig's default

// Arms fault points for a scope and disarms them when it ends, however it ends.
class FaultScope {
 public:
  FaultScope(std::initializer_list<std::string_view> names) : names_(names) {
    for (std::string_view name : names_) fault::Arm(name);
  }
  ~FaultScope() { DisarmAll(); }
  FaultScope(const FaultScope&) = delete;
  FaultScope& operator=(const FaultScope&) = delete;

  void DisarmAll() {
    for (std::string_view name : names_) fault::Disarm(name);
  }

 private:
  std::vector<std::string_view> names_;
};

// Sums the samples of `metric` whose labels contain `label` (e.g. state="dead_letter").
double MetricSample(const std::string& text, const std::string& metric, const std::string& label) {
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, metric + "{") || !absl::StrContains(line, label)) continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space != absl::string_view::npos && absl::SimpleAtod(line.substr(space + 1), &value)) {
      sum += value;
    }
  }
  return sum;
}

std::string MetricsText(HttpClient& client) {
  absl::StatusOr<HttpResult> metrics = client.Request("GET", "/metrics");
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  if (!metrics.ok()) return "";
  EXPECT_EQ(metrics->status, 200);
  return metrics->body;
}

DlqActionResponse DlqAction(HttpClient& client, const std::string& action,
                            const DlqRequest& request) {
  DlqActionResponse response;
  absl::Status s = client.Call("POST", "/v1/dlq/" + action, &request, response);
  EXPECT_TRUE(s.ok()) << action << ": " << s;
  return response;
}

DlqRequest AllEntries() {
  DlqRequest request;
  request.set_all(true);
  return request;
}

DlqRequest Entries(std::initializer_list<int64_t> sequences) {
  DlqRequest request;
  for (int64_t sequence : sequences) request.add_sequences(sequence);
  return request;
}

// Every shard of east has published (or, with kPublishLoseTask, lost) every task of its outbox.
bool EastPublishedAll(HttpClient& east) { return PublishedAll(GetStatus(east)); }

// workflow id -> digest.
std::map<std::string, WorkflowDigest> DigestsById(HttpClient& client, const std::string& ns) {
  absl::StatusOr<ListDigestsResponse> digests = Digests(client, ns);
  EXPECT_TRUE(digests.ok()) << digests.status();
  std::map<std::string, WorkflowDigest> result;
  if (!digests.ok()) return result;
  for (const WorkflowDigest& digest : digests->workflows()) result[digest.workflow_id()] = digest;
  return result;
}

// East's appends made one at a time, one event each, with the outbox task id each one got: task
// ids are dense per shard and every append makes exactly one task, as long as nothing else
// writes to east's outbox (no resend is served, no reapplication). So the test knows which tasks
// kPublishLoseTask lost and what west can end up with.
class Ledger {
 public:
  struct Workflow {
    std::string run_id;
    std::vector<bool> delivered;  // index: event id - 1
  };
  struct Task {
    std::string workflow_id;
    int32_t shard = 0;
    int64_t task_id = 0;
    int64_t event_id = 0;
    bool delivered = true;
  };

  Ledger(HttpClient& east, std::string ns, std::string namespace_id)
      : east_(east), ns_(std::move(ns)), namespace_id_(std::move(namespace_id)) {
    const StatusResponse status = GetStatus(east_);
    for (const ShardStatus& shard : status.shards()) {
      next_task_id_.push_back(shard.outbox_next_task_id());
    }
  }

  // Appends WorkflowExecutionStarted to a new workflow.
  void Start(const std::string& workflow_id) {
    AppendResponse response;
    const AppendRequest request =
        Append(ns_, workflow_id, 1, {Event(WORKFLOW_EXECUTION_STARTED, "in-" + workflow_id)});
    absl::Status s = east_.Call("POST", "/v1/append", &request, response);
    ASSERT_TRUE(s.ok()) << workflow_id << ": " << s;
    ASSERT_EQ(response.first_event_id(), 1);
    workflows_[workflow_id].run_id = response.run_id();
    Record(workflow_id, 1);
  }

  void Signal(const std::string& workflow_id) {
    Workflow& workflow = workflows_.at(workflow_id);
    SignalRequest signal;
    signal.set_namespace_(ns_);
    signal.set_workflow_id(workflow_id);
    signal.set_run_id(workflow.run_id);
    signal.set_signal_name(absl::StrCat("signal-", workflow.delivered.size()));
    AppendResponse response;
    absl::Status s = east_.Call("POST", "/v1/signal", &signal, response);
    ASSERT_TRUE(s.ok()) << workflow_id << ": " << s;
    Record(workflow_id, response.first_event_id());
  }

  // Appends WorkflowExecutionCompleted; returns the error instead of asserting (for threads).
  absl::Status Complete(HttpClient& client, const std::string& workflow_id) const {
    const Workflow& workflow = workflows_.at(workflow_id);
    const AppendRequest request =
        Append(ns_, workflow_id, static_cast<int64_t>(workflow.delivered.size()) + 1,
               {Event(WORKFLOW_EXECUTION_COMPLETED, "done")}, workflow.run_id);
    AppendResponse response;
    return client.Call("POST", "/v1/append", &request, response);
  }

  // Workflows with a lost event followed by a delivered one: west parks the delivered tasks.
  [[nodiscard]] std::set<std::string> GapWorkflows() const {
    std::set<std::string> result;
    for (const auto& [id, workflow] : workflows_) {
      if (ParkedIfNoResend(workflow) > 0) result.insert(id);
    }
    return result;
  }
  // DLQ entries west holds if nobody resends: every delivered task after the first lost one.
  [[nodiscard]] int64_t ParkedIfNoResend() const {
    int64_t parked = 0;
    for (const auto& [id, workflow] : workflows_) parked += ParkedIfNoResend(workflow);
    return parked;
  }
  // West's next event id for the workflow once it applied what it could: without resends, up
  // to the first lost event; with them, up to the last delivered one. 0: west does not have it.
  [[nodiscard]] int64_t WestNextWithoutResends(const Workflow& workflow) const {
    int64_t next = 1;
    while (next <= static_cast<int64_t>(workflow.delivered.size()) &&
           workflow.delivered[next - 1]) {
      ++next;
    }
    return next == 1 ? 0 : next;
  }
  [[nodiscard]] int64_t WestNextWithResends(const Workflow& workflow) const {
    for (int64_t id = static_cast<int64_t>(workflow.delivered.size()); id >= 1; --id) {
      if (workflow.delivered[id - 1]) return id + 1;
    }
    return 0;
  }

  // Checks west's workflows against what the ledger says west can have, and that every one it
  // has completely is identical to east's.
  void ExpectWest(HttpClient& east, HttpClient& west, bool resends) const {
    const std::map<std::string, WorkflowDigest> on_east = DigestsById(east, ns_);
    const std::map<std::string, WorkflowDigest> on_west = DigestsById(west, ns_);
    size_t expected_on_west = 0;
    for (const auto& [id, workflow] : workflows_) {
      SCOPED_TRACE(id);
      const int64_t next =
          resends ? WestNextWithResends(workflow) : WestNextWithoutResends(workflow);
      auto found = on_west.find(id);
      if (next == 0) {
        EXPECT_TRUE(found == on_west.end()) << found->second.DebugString();
        continue;
      }
      ++expected_on_west;
      ASSERT_TRUE(found != on_west.end());
      EXPECT_EQ(found->second.next_event_id(), next);
      const WorkflowDigest& east_digest = on_east.at(id);
      if (next == east_digest.next_event_id()) {
        EXPECT_TRUE(MessageDifferencer::Equals(found->second, east_digest))
            << found->second.DebugString() << " vs east " << east_digest.DebugString();
      }
    }
    EXPECT_EQ(on_west.size(), expected_on_west);
  }

  // Task ids east's outbox must have reached, per shard.
  [[nodiscard]] const std::vector<int64_t>& next_task_ids() const { return next_task_id_; }
  // Tasks that reached Kafka per shard: the end offsets of east's (initially empty) partitions.
  [[nodiscard]] std::vector<int64_t> DeliveredPerShard() const {
    std::vector<int64_t> result(next_task_id_.size(), 0);
    for (const Task& task : tasks_) result[task.shard] += task.delivered ? 1 : 0;
    return result;
  }
  // Per shard, the Kafka offset of the first task west parks if nobody resends; -1 if none.
  [[nodiscard]] std::vector<int64_t> FirstParkedOffsetPerShard() const {
    std::vector<int64_t> result(next_task_id_.size(), -1);
    std::vector<int64_t> offset(next_task_id_.size(), 0);
    for (const Task& task : tasks_) {
      if (!task.delivered) continue;
      const Workflow& workflow = workflows_.at(task.workflow_id);
      const int64_t first_missing =
          WestNextWithoutResends(workflow) == 0 ? 1 : WestNextWithoutResends(workflow);
      if (task.event_id > first_missing && result[task.shard] < 0) {
        result[task.shard] = offset[task.shard];
      }
      ++offset[task.shard];
    }
    return result;
  }
  [[nodiscard]] int64_t lost() const {
    int64_t lost = 0;
    for (const Task& task : tasks_) lost += task.delivered ? 0 : 1;
    return lost;
  }
  [[nodiscard]] std::vector<std::string> workflow_ids() const {
    std::vector<std::string> ids;
    for (const auto& [id, workflow] : workflows_) ids.push_back(id);
    return ids;
  }

 private:
  int64_t ParkedIfNoResend(const Workflow& workflow) const {
    const int64_t west_next = WestNextWithoutResends(workflow);
    const int64_t first_missing = west_next == 0 ? 1 : west_next;
    int64_t parked = 0;
    for (int64_t id = first_missing + 1; id <= static_cast<int64_t>(workflow.delivered.size());
         ++id) {
      parked += workflow.delivered[id - 1] ? 1 : 0;
    }
    return parked;
  }

  void Record(const std::string& workflow_id, int64_t event_id) {
    Workflow& workflow = workflows_.at(workflow_id);
    ASSERT_EQ(event_id, static_cast<int64_t>(workflow.delivered.size()) + 1) << workflow_id;
    const int32_t shard = ShardFor(namespace_id_, workflow_id, kShards);
    Task task{.workflow_id = workflow_id,
              .shard = shard,
              .task_id = next_task_id_[shard]++,
              .event_id = event_id};
    task.delivered = !(task.task_id % fault::kPublishLoseEvery == fault::kPublishLoseEvery - 1);
    workflow.delivered.push_back(task.delivered);
    tasks_.push_back(std::move(task));
  }

  HttpClient& east_;
  const std::string ns_;  // name
  const std::string namespace_id_;
  std::vector<int64_t> next_task_id_;  // per shard
  std::map<std::string, Workflow> workflows_;
  std::vector<Task> tasks_;  // in append order
};

// East has published (or, with kPublishLoseTask, lost) every task of its outbox, and its outbox
// holds exactly the tasks `ledger` wrote: the test's accounting of tasks is complete.
void WaitUntilEastPublishedExactly(HttpClient& east_client, const Ledger& ledger) {
  ASSERT_TRUE(WaitUntil([&] { return EastPublishedAll(east_client); }));
  const StatusResponse east = GetStatus(east_client);
  for (int32_t shard = 0; shard < kShards; ++shard) {
    ASSERT_EQ(east.shards(shard).outbox_next_task_id(), ledger.next_task_ids()[shard])
        << "something else wrote to east's outbox: " << east.DebugString();
  }
}

// Writes batches of `batch` workflows (all started, then all signalled, so lost starts are
// followed by delivered signals) until the ledger says west will see a gap; at most 8 batches.
void WriteUntilAGap(Ledger& ledger, const std::string& prefix, int batch) {
  for (int round = 0; round < 8 && ledger.GapWorkflows().empty(); ++round) {
    for (int i = 0; i < batch; ++i) {
      ASSERT_NO_FATAL_FAILURE(ledger.Start(absl::StrCat(prefix, "-", round, "-", i)));
    }
    for (int i = 0; i < batch; ++i) {
      ASSERT_NO_FATAL_FAILURE(ledger.Signal(absl::StrCat(prefix, "-", round, "-", i)));
    }
  }
  ASSERT_FALSE(ledger.GapWorkflows().empty()) << "no lost task was followed by a delivered one";
}

// Completes every workflow of the ledger on east from a few client threads.
void CompleteAll(const std::string& address, const Ledger& ledger) {
  const std::vector<std::string> ids = ledger.workflow_ids();
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client(address);
      for (size_t i = t; i < ids.size(); i += 4) {
        if (absl::Status s = ledger.Complete(client, ids[i]); !s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          errors.push_back(absl::StrCat(ids[i], ": ", s.ToString()));
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(errors, IsEmpty());
}

// West's applied offsets per shard reached `offsets` (the ends of east's partitions).
bool AppliedUpTo(const StatusResponse& status, const std::vector<int64_t>& offsets) {
  for (int32_t shard = 0; shard < status.shards_size(); ++shard) {
    if (status.shards(shard).peers(0).applied_offset() != offsets[shard]) return false;
  }
  return true;
}

// West's applied offsets per shard reached at least `offsets`.
bool AppliedAtLeast(const StatusResponse& status, const std::vector<int64_t>& offsets) {
  for (int32_t shard = 0; shard < status.shards_size(); ++shard) {
    if (status.shards(shard).peers(0).applied_offset() < offsets[shard]) return false;
  }
  return true;
}

class ResendDlqTest : public TwoClustersTest {
 protected:
  ResendDlqTest() {
    // A lost resend answer is asked for again soon, so lost answers cost little time.
    west_tunables_.resend_retry_interval_ms = 100;
  }
};

TEST_F(ResendDlqTest, LostTasksAreResentFromTheStoreAndParkedTasksResume) {
  constexpr int kWorkflows = 40;
  FaultScope faults({fault::kPublishLoseTask});
  // Start and signal every workflow while east's publisher loses every 5th task of a shard.
  // Some shard gets at least 20 of these 80 tasks, so at least 4 are lost.
  std::vector<std::string> run_ids(kWorkflows);
  {
    std::mutex mu;
    std::vector<std::string> errors;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        HttpClient client(east_->http_address());
        for (int i = t; i < kWorkflows; i += 4) {
          const std::string id = absl::StrCat("lost-", i);
          AppendResponse started;
          const AppendRequest start =
              Append(kNamespace, id, 1, {Event(WORKFLOW_EXECUTION_STARTED, "in-" + id)});
          absl::Status s = client.Call("POST", "/v1/append", &start, started);
          if (s.ok()) {
            run_ids[i] = started.run_id();
            SignalRequest signal;
            signal.set_namespace_(kNamespace);
            signal.set_workflow_id(id);
            signal.set_signal_name("go");
            AppendResponse signalled;
            s = client.Call("POST", "/v1/signal", &signal, signalled);
          }
          if (!s.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            errors.push_back(absl::StrCat(id, ": ", s.ToString()));
          }
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    ASSERT_THAT(errors, IsEmpty());
  }
  // Every task written so far went through the lossy publisher before it is disarmed.
  ASSERT_TRUE(WaitUntil([&] { return EastPublishedAll(*east_client_); }));
  faults.DisarmAll();

  // The last step of every workflow is delivered, so every lost task is followed by a delivered
  // one: each loss is a gap west can see and have filled.
  {
    std::mutex mu;
    std::vector<std::string> errors;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        HttpClient client(east_->http_address());
        for (int i = t; i < kWorkflows; i += 4) {
          const std::string id = absl::StrCat("lost-", i);
          const AppendRequest complete =
              Append(kNamespace, id, 3, {Event(WORKFLOW_EXECUTION_COMPLETED, "done")}, run_ids[i]);
          AppendResponse completed;
          if (absl::Status s = client.Call("POST", "/v1/append", &complete, completed); !s.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            errors.push_back(absl::StrCat(id, ": ", s.ToString()));
          }
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    ASSERT_THAT(errors, IsEmpty());
  }

  EXPECT_EQ(WaitForConvergence(), static_cast<size_t>(kWorkflows));
  for (const auto& [id, digest] : DigestsById(*west_client_, kNamespace)) {
    EXPECT_EQ(digest.next_event_id(), 4) << id;
  }
  StatusResponse status;
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return CaughtUp(status) && status.parked_tasks() == 0 && status.dlq_awaiting_resend() == 0;
  })) << status.DebugString();
  EXPECT_THAT(status.halted_appliers(), IsEmpty());
  EXPECT_THAT(GetDlq(*west_client_).tasks(), IsEmpty());
  // Note: the ids of the lost tasks stay reported as missing_tasks (a resend answer is a new
  // task); that is a known limit, not checked here.

  const std::string west_metrics = MetricsText(*west_client_);
  EXPECT_GT(MetricSum(west_metrics, "xdc_resend_requests_total"), 0) << west_metrics;
  EXPECT_GT(MetricSum(west_metrics, "xdc_parked_tasks_resumed_total"), 0) << west_metrics;
  EXPECT_EQ(MetricSum(west_metrics, "xdc_gaps_dead_lettered_total"), 0) << west_metrics;
  EXPECT_EQ(MetricSample(west_metrics, "xdc_dlq_entries", "state=\"awaiting_resend\""), 0);
  EXPECT_EQ(MetricSample(west_metrics, "xdc_dlq_entries", "state=\"dead_letter\""), 0);
  const std::string east_metrics = MetricsText(*east_client_);
  EXPECT_GT(MetricSum(east_metrics, "xdc_resend_tasks_served_total"), 0) << east_metrics;
}

// West gives up on a gap quickly: two resend requests, 100 ms apart.
class DeadLetterTest : public TwoClustersTest {
 protected:
  DeadLetterTest() {
    west_tunables_.resend_retry_interval_ms = 100;
    west_tunables_.resend_max_attempts = 2;
  }
};

TEST_F(DeadLetterTest, AGapThatCannotBeFilledIsDeadLetteredThenRetriedByTheOperator) {
  FaultScope faults({fault::kPublishLoseTask, fault::kResendRefuse});
  Ledger ledger(*east_client_, kNamespace, namespace_id_);
  ASSERT_NO_FATAL_FAILURE(WriteUntilAGap(ledger, "dl", 20));
  const std::set<std::string> gap_workflows = ledger.GapWorkflows();
  const int64_t gaps = ledger.ParkedIfNoResend();
  ASSERT_NO_FATAL_FAILURE(WaitUntilEastPublishedExactly(*east_client_, ledger));

  // West applies everything up to the first lost event of each workflow, parks what follows a
  // gap, asks twice, and then leaves the entries for an operator.
  StatusResponse status;
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return AppliedUpTo(status, ledger.DeliveredPerShard()) && status.parked_tasks() > 0 &&
           status.dlq_awaiting_resend() == 0;
  })) << status.DebugString();
  EXPECT_EQ(status.parked_tasks(), gaps) << status.DebugString();
  EXPECT_THAT(status.halted_appliers(), IsEmpty());
  const ListParkedResponse dlq = GetDlq(*west_client_);
  ASSERT_THAT(dlq.tasks(), SizeIs(static_cast<size_t>(gaps)));
  for (const ParkedTask& entry : dlq.tasks()) {
    SCOPED_TRACE(entry.DebugString());
    EXPECT_EQ(entry.reason(), PARK_REASON_GAP);
    EXPECT_FALSE(entry.awaiting_resend());
    EXPECT_EQ(entry.source_cluster(), "east");
    EXPECT_EQ(entry.attempts(), 3);  // parked, asked again, given up
    EXPECT_EQ(entry.expected_event_id(), 1);
    EXPECT_THAT(entry.error(), HasSubstr("gave up after 2 resend requests to east"));
    EXPECT_THAT(entry.error(), HasSubstr("gap"));
    EXPECT_TRUE(gap_workflows.contains(entry.workflow().workflow_id()));
  }
  // Nothing after a gap was applied (west does not have those workflows at all: their starts
  // were lost), everything else was.
  ledger.ExpectWest(*east_client_, *west_client_, /*resends=*/false);
  for (const std::string& id : gap_workflows) {
    EXPECT_EQ(RequestError(*west_client_, "GET",
                           absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=", id))
                  .http_status,
              404)
        << id;
  }
  std::string west_metrics = MetricsText(*west_client_);
  EXPECT_EQ(MetricSum(west_metrics, "xdc_gaps_dead_lettered_total"), gaps) << west_metrics;
  EXPECT_EQ(MetricSum(west_metrics, "xdc_resend_requests_total"), 2 * gaps) << west_metrics;
  EXPECT_EQ(MetricSample(west_metrics, "xdc_dlq_entries", "state=\"dead_letter\""), gaps);
  EXPECT_EQ(MetricSample(west_metrics, "xdc_dlq_entries", "state=\"awaiting_resend\""), 0);
  EXPECT_EQ(MetricSum(MetricsText(*east_client_), "xdc_resend_tasks_served_total"), 0);

  // Requests that name nothing are refused; unknown sequences are reported, nothing changes.
  for (const char* action : {"retry", "purge"}) {
    SCOPED_TRACE(action);
    const ApiError e = RequestError(*west_client_, "POST", absl::StrCat("/v1/dlq/", action), "{}");
    EXPECT_EQ(e.http_status, 400) << e.body;
    EXPECT_EQ(e.error.code(), "INVALID_ARGUMENT");
    EXPECT_THAT(e.error.message(), HasSubstr("\"sequences\""));
    EXPECT_THAT(e.error.message(), HasSubstr("\"all\""));
    constexpr int64_t kUnknown = 987654321;
    const DlqActionResponse response = DlqAction(*west_client_, action, Entries({kUnknown}));
    ASSERT_THAT(response.outcomes(), SizeIs(1));
    EXPECT_EQ(response.outcomes(0).sequence(), kUnknown);
    EXPECT_EQ(response.outcomes(0).result(), "not_found");
    EXPECT_EQ(response.dlq_entries(), gaps);
  }
  EXPECT_EQ(GetStatus(*west_client_).parked_tasks(), gaps);

  // The source can supply the events again; the operator retries everything. The gaps are still
  // there, so every entry goes back to waiting for a resend, and the automatic path fills them.
  // An entry whose last request east reads only now (after the fault is disarmed) may have its
  // gap filled before the operator's retry reaches it: the retry then applies it at once.
  faults.DisarmAll();
  int64_t applied_by_operator = 0;
  const DlqActionResponse retried = DlqAction(*west_client_, "retry", AllEntries());
  ASSERT_THAT(retried.outcomes(), SizeIs(static_cast<size_t>(gaps)));
  for (const DlqOutcome& outcome : retried.outcomes()) {
    if (outcome.result() == "applied") {
      ++applied_by_operator;
      continue;
    }
    EXPECT_EQ(outcome.result(), "still_parked") << outcome.DebugString();
    EXPECT_THAT(outcome.error(), HasSubstr("gap")) << outcome.DebugString();
  }
  EXPECT_EQ(retried.dlq_entries(), gaps - applied_by_operator);
  // With only two attempts an entry can be dead-lettered again if the answer is slower than
  // 200 ms (a loaded machine); the operator then retries again. Counted and reported.
  int retries = 1;
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    if (status.parked_tasks() == 0) return true;
    if (status.dlq_awaiting_resend() == 0 && retries < 10) {
      const DlqActionResponse again = DlqAction(*west_client_, "retry", AllEntries());
      for (const DlqOutcome& outcome : again.outcomes()) {
        if (outcome.result() == "applied") ++applied_by_operator;
      }
      ++retries;
    }
    return false;
  })) << status.DebugString();
  RecordProperty("operator_retries", retries);
  if (retries > 1) std::cerr << "note: the operator had to retry " << retries << " times\n";
  EXPECT_THAT(GetDlq(*west_client_).tasks(), IsEmpty());
  // Each workflow that had a gap now has all east wrote; the others are as before.
  ledger.ExpectWest(*east_client_, *west_client_, /*resends=*/true);
  west_metrics = MetricsText(*west_client_);
  // Every entry was resumed by the automatic path after a resend, or applied by a retry (which
  // `xdc_parked_tasks_resumed_total` does not count: its outcome says so).
  EXPECT_GE(MetricSum(west_metrics, "xdc_parked_tasks_resumed_total") + applied_by_operator, gaps)
      << west_metrics;
  // A retried entry asks east again, unless the answer to its second request filled the gap
  // first: east may read that request only after the fault was disarmed (a CI run on the real
  // broker saw 5 requests for 2 gaps), so only the two per gap before the retry are certain.
  EXPECT_GE(MetricSum(west_metrics, "xdc_resend_requests_total"), 2 * gaps) << west_metrics;
  EXPECT_EQ(MetricSample(west_metrics, "xdc_dlq_entries", "state=\"dead_letter\""), 0);
  EXPECT_GT(MetricSum(MetricsText(*east_client_), "xdc_resend_tasks_served_total"), 0);

  // A last, delivered step on every workflow: the lost last steps become gaps that are filled
  // too, and the clusters converge.
  ASSERT_NO_FATAL_FAILURE(CompleteAll(east_->http_address(), ledger));
  EXPECT_EQ(WaitForConvergence(), ledger.workflow_ids().size());
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return CaughtUp(status) && status.parked_tasks() == 0;
  })) << status.DebugString();
}

TEST_F(ResendDlqTest, PurgeDeletesOnlyTheNamedEntries) {
  constexpr int32_t kPartition = 2;
  const std::vector<std::string> garbage = {"not a frame 1", "not a frame 2", "not a frame 3"};
  {
    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
        east_->kafka_bootstrap(), "test",
        [](uint64_t, const absl::Status& status) { EXPECT_TRUE(status.ok()) << status; });
    ASSERT_TRUE(producer.ok()) << producer.status();
    for (size_t i = 0; i < garbage.size(); ++i) {
      ASSERT_TRUE((*producer)
                      ->Produce(HistoryTopic("east", TestTopicPrefix()), kPartition, garbage[i], i)
                      .ok());
    }
    ASSERT_TRUE((*producer)->Flush(10000).ok());
  }
  StatusResponse status;
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return status.parked_tasks() == 3;
  })) << status.DebugString();
  const ListParkedResponse before = GetDlq(*west_client_);
  ASSERT_THAT(before.tasks(), SizeIs(3));
  std::map<std::string, ParkedTask> by_bytes;
  for (const ParkedTask& entry : before.tasks()) {
    EXPECT_EQ(entry.reason(), PARK_REASON_CORRUPT_MESSAGE);
    by_bytes[entry.raw_message()] = entry;
  }
  ASSERT_EQ(by_bytes.size(), 3u);
  const ParkedTask& first = by_bytes.at(garbage[0]);
  const ParkedTask& second = by_bytes.at(garbage[1]);
  const ParkedTask& third = by_bytes.at(garbage[2]);

  // Retrying a corrupt entry cannot apply it: it stays, unchanged.
  DlqActionResponse response = DlqAction(*west_client_, "retry", Entries({second.sequence()}));
  ASSERT_THAT(response.outcomes(), SizeIs(1));
  EXPECT_EQ(response.outcomes(0).result(), "still_parked");
  EXPECT_FALSE(response.outcomes(0).error().empty());
  EXPECT_EQ(response.dlq_entries(), 3);

  response = DlqAction(*west_client_, "purge", Entries({second.sequence()}));
  ASSERT_THAT(response.outcomes(), SizeIs(1));
  EXPECT_EQ(response.outcomes(0).sequence(), second.sequence());
  EXPECT_EQ(response.outcomes(0).result(), "purged");
  EXPECT_EQ(response.dlq_entries(), 2);
  EXPECT_EQ(GetStatus(*west_client_).parked_tasks(), 2);
  // The other two are exactly as they were.
  ListParkedResponse after = GetDlq(*west_client_);
  ASSERT_THAT(after.tasks(), SizeIs(2));
  for (const ParkedTask& entry : after.tasks()) {
    EXPECT_NE(entry.sequence(), second.sequence());
    const ParkedTask& expected = entry.sequence() == first.sequence() ? first : third;
    EXPECT_TRUE(MessageDifferencer::Equals(entry, expected))
        << entry.DebugString() << " vs " << expected.DebugString();
  }

  // Purging it again finds nothing; purging the rest empties the DLQ.
  response = DlqAction(*west_client_, "purge", Entries({second.sequence()}));
  ASSERT_THAT(response.outcomes(), SizeIs(1));
  EXPECT_EQ(response.outcomes(0).result(), "not_found");
  EXPECT_EQ(response.dlq_entries(), 2);
  response = DlqAction(*west_client_, "purge", Entries({first.sequence(), third.sequence()}));
  ASSERT_THAT(response.outcomes(), SizeIs(2));
  for (const DlqOutcome& outcome : response.outcomes()) EXPECT_EQ(outcome.result(), "purged");
  EXPECT_EQ(response.dlq_entries(), 0);
  EXPECT_THAT(GetDlq(*west_client_).tasks(), IsEmpty());
  EXPECT_EQ(GetStatus(*west_client_).parked_tasks(), 0);
}

// Issue 15, item 10: a task id or a failover version at the top of int64, from a peer, is parked
// in the DLQ with a clear error: never counted as ~9e18 missing tasks, never merged into the
// namespace's record, never a decided version that no failover can go above.
TEST_F(ResendDlqTest, CraftedIdsAndVersionsAtTheTopOfInt64AreParkedNotApplied) {
  constexpr int64_t kTop = std::numeric_limits<int64_t>::max();
  constexpr int32_t kPartition = 2;
  std::vector<std::string> crafted_history;
  for (int64_t task_id : {kTop, kTop - 1}) {
    HistoryMessage message;
    ReplicationTask& task = *message.mutable_task();
    task.set_shard(kPartition);
    task.set_source_cluster("east");
    task.set_task_id(task_id);
    task.mutable_workflow()->set_namespace_id(namespace_id_);
    task.mutable_workflow()->set_workflow_id("crafted");
    task.mutable_workflow()->set_run_id("run");
    crafted_history.push_back(EncodeFrame(message));
  }
  std::vector<std::string> crafted_control;
  {
    ControlMessage message;
    message.set_source_cluster("east");
    DescribeNamespaceResponse described;
    absl::Status s = east_client_->Call(
        "GET", absl::StrCat("/v1/namespaces/", kNamespace, "/describe"), nullptr, described);
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_EQ(described.namespace_().id(), namespace_id_);
    *message.mutable_namespace_record() = described.namespace_();
    message.mutable_namespace_record()->set_failover_version(kTop);
    crafted_control.push_back(EncodeFrame(message));
    ControlMessage cancel;
    cancel.set_source_cluster("east");
    cancel.mutable_handover_cancel()->set_namespace_id(namespace_id_);
    cancel.mutable_handover_cancel()->set_target_cluster("west");
    cancel.mutable_handover_cancel()->set_proposed_version(kTop);
    crafted_control.push_back(EncodeFrame(cancel));
  }
  {
    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
        east_->kafka_bootstrap(), "test",
        [](uint64_t, const absl::Status& status) { EXPECT_TRUE(status.ok()) << status; });
    ASSERT_TRUE(producer.ok()) << producer.status();
    uint64_t opaque = 0;
    for (const std::string& frame : crafted_history) {
      ASSERT_TRUE(
          (*producer)
              ->Produce(HistoryTopic("east", TestTopicPrefix()), kPartition, frame, opaque++)
              .ok());
    }
    for (const std::string& frame : crafted_control) {
      ASSERT_TRUE(
          (*producer)->Produce(ControlTopic("east", TestTopicPrefix()), 0, frame, opaque++).ok());
    }
    ASSERT_TRUE((*producer)->Flush(10000).ok());
  }
  StatusResponse status;
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return status.parked_tasks() == 4;
  })) << status.DebugString();
  const ListParkedResponse parked = GetDlq(*west_client_);
  ASSERT_THAT(parked.tasks(), SizeIs(4));
  for (const ParkedTask& entry : parked.tasks()) {
    EXPECT_EQ(entry.reason(), PARK_REASON_INVALID_TASK) << entry.DebugString();
    EXPECT_THAT(entry.error(), HasSubstr("maximum")) << entry.DebugString();
  }
  for (const ShardStatus& shard : status.shards()) {
    for (const PeerShardStatus& peer : shard.peers()) {
      EXPECT_EQ(peer.missing_tasks(), 0) << shard.DebugString();
    }
  }
  DescribeNamespaceResponse on_west;
  ASSERT_TRUE(
      west_client_
          ->Call("GET", absl::StrCat("/v1/namespaces/", kNamespace, "/describe"), nullptr, on_west)
          .ok());
  EXPECT_EQ(on_west.namespace_().failover_version(), 1);

  // The crafted cancel decided nothing: a forced failover to west takes west's next version.
  FailoverRequest force;
  force.set_target_cluster("west");
  force.set_force(true);
  NamespaceRecord forced;
  absl::Status s = west_client_->Call(
      "POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"), &force, forced);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(forced.failover_version(), 2);

  // A retry by the operator keeps them parked.
  DlqActionResponse response = DlqAction(*west_client_, "retry", AllEntries());
  EXPECT_EQ(response.dlq_entries(), 4);
}

// A parked control message is retried as the live applier applies one (it was reported
// "applied" and dropped unless it held a namespace record): a resend request addressed to this
// cluster is answered, its tasks in the outbox; one that claims another source than the stream it
// came from stays parked, with the reason.
TEST_F(ResendDlqTest, ARetriedParkedControlMessageHasTheEffectTheApplierGivesIt) {
  absl::StatusOr<int64_t> written = WriteWorkflow(*east_client_, kNamespace, "asked", false);
  ASSERT_TRUE(written.ok()) << written.status();
  WaitForConvergence();
  GetHistoryResponse history;
  ASSERT_TRUE(west_client_
                  ->Call("GET",
                         absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=asked"),
                         nullptr, history)
                  .ok());
  // East asks west for events [1, 3) of the run (west holds them); the request is parked on west,
  // as west's applier parks control messages (shard -1).
  ControlMessage resend;
  resend.set_source_cluster("east");
  ResendRequest* request = resend.mutable_resend_request();
  request->set_target_cluster("west");
  *request->mutable_workflow() = history.workflow();
  *request->mutable_version_history_items() =
      history.version_histories().histories(history.version_histories().current_index()).items();
  request->set_first_event_id(1);
  request->set_next_event_id(3);
  ControlMessage forged;
  forged.set_source_cluster("north");
  forged.mutable_handover_cancel()->set_namespace_id(namespace_id_);
  StoreWrite park;
  for (const ControlMessage& message : {resend, forged}) {
    ParkedTask entry;
    entry.set_source_cluster("east");
    entry.set_shard(-1);
    entry.set_reason(PARK_REASON_INVALID_TASK);
    entry.set_error("parked by the test");
    entry.set_raw_message(EncodeFrame(message));
    park.parked.push_back(entry);
  }
  ASSERT_TRUE(west_->store().CommitWrite(park).ok());
  const ListParkedResponse parked = GetDlq(*west_client_);
  ASSERT_THAT(parked.tasks(), SizeIs(2));
  const int32_t shard = ShardFor(namespace_id_, "asked", GetStatus(*west_client_).shard_count());
  const int64_t outbox_before = GetStatus(*west_client_).shards(shard).outbox_next_task_id();

  DlqActionResponse response = DlqAction(*west_client_, "retry", AllEntries());
  ASSERT_THAT(response.outcomes(), SizeIs(2));
  std::map<int64_t, DlqOutcome> by_sequence;
  for (const DlqOutcome& outcome : response.outcomes()) by_sequence[outcome.sequence()] = outcome;
  const DlqOutcome& answered = by_sequence.at(parked.tasks(0).sequence());
  const DlqOutcome& kept = by_sequence.at(parked.tasks(1).sequence());
  EXPECT_EQ(answered.result(), "applied");
  EXPECT_EQ(GetStatus(*west_client_).shards(shard).outbox_next_task_id(), outbox_before + 1)
      << "the resend's answer is not in west's outbox";
  EXPECT_EQ(kept.result(), "still_parked");
  EXPECT_THAT(kept.error(), HasSubstr("says it is from 'north' but came from 'east'"));
  EXPECT_EQ(response.dlq_entries(), 1);
  // East drops the answer as a duplicate: nothing changes there.
  WaitForConvergence();
}

TEST_F(ResendDlqTest, AFailedDlqWriteHaltsTheApplierAndLosesNothing) {
  FaultScope faults({fault::kStoreWriteDlq, fault::kPublishLoseTask});
  Ledger ledger(*east_client_, kNamespace, namespace_id_);
  ASSERT_NO_FATAL_FAILURE(WriteUntilAGap(ledger, "halt", 20));
  ASSERT_NO_FATAL_FAILURE(WaitUntilEastPublishedExactly(*east_client_, ledger));

  // West cannot park the first task after a gap: it halts instead of going past it.
  StatusResponse status;
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return !status.halted_appliers().empty();
  })) << status.DebugString();
  ASSERT_THAT(status.halted_appliers(), SizeIs(1));
  EXPECT_THAT(status.halted_appliers(0), HasSubstr("applier for peer east halted"));
  EXPECT_THAT(status.halted_appliers(0), HasSubstr("writing the DLQ failed"));
  EXPECT_THAT(status.store_write_error(), HasSubstr("writing the DLQ failed"));
  EXPECT_EQ(status.parked_tasks(), 0);
  EXPECT_EQ(MetricSum(MetricsText(*west_client_), "xdc_applier_halted"), 1);

  // Neither the stored progress nor the reported one passed a task west could not park.
  const std::vector<int64_t> first_parked = ledger.FirstParkedOffsetPerShard();
  for (int32_t shard = 0; shard < kShards; ++shard) {
    SCOPED_TRACE(absl::StrCat("shard ", shard));
    absl::StatusOr<ShardApplyProgress> stored = west_->store().GetApplyProgress("east", shard);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->tasks_parked(), 0);
    if (first_parked[shard] < 0) continue;
    EXPECT_LE(stored->next_offset(), first_parked[shard]);
    EXPECT_LE(status.shards(shard).peers(0).applied_offset(), first_parked[shard]);
  }

  // Fix the cause, then restart west on the same store: it reads the task again, parks it,
  // has the gap filled and holds everything east delivered.
  faults.DisarmAll();
  StopWest();
  ASSERT_NO_FATAL_FAILURE(StartWest());
  // (The resend answers are new tasks at the ends of east's partitions.)
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return AppliedAtLeast(status, ledger.DeliveredPerShard()) && status.parked_tasks() == 0 &&
           EastPublishedAll(*east_client_) && CaughtUp(status);
  })) << status.DebugString();
  EXPECT_THAT(status.halted_appliers(), IsEmpty());
  EXPECT_EQ(status.store_write_error(), "");
  EXPECT_EQ(status.dlq_awaiting_resend(), 0);
  ledger.ExpectWest(*east_client_, *west_client_, /*resends=*/true);
  const std::string west_metrics = MetricsText(*west_client_);
  EXPECT_GE(MetricSum(west_metrics, "xdc_resend_requests_total"), 1) << west_metrics;
  EXPECT_GE(MetricSum(west_metrics, "xdc_parked_tasks_resumed_total"),
            static_cast<double>(ledger.ParkedIfNoResend()))
      << west_metrics;
  EXPECT_EQ(MetricSum(west_metrics, "xdc_applier_halted"), 0);

  // And with a delivered last step everywhere, the clusters converge.
  ASSERT_NO_FATAL_FAILURE(CompleteAll(east_->http_address(), ledger));
  EXPECT_EQ(WaitForConvergence(), ledger.workflow_ids().size());
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return CaughtUp(status) && status.parked_tasks() == 0;
  })) << status.DebugString();
}

}  // namespace
}  // namespace xdc
