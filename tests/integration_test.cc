// Integration tests: whole clusters (store, Kafka, publisher, appliers, HTTP API) in one process,
// replicating over librdkafka's mock Kafka, driven through the HTTP API like a client would.
//
//   Replication    two clusters converge: namespaces, histories, version histories, progress
//   WriteGate      a write on the standby is refused, naming the active cluster
//   BadInput       each malformed or inconsistent request gets the right status and message
//   CorruptKafka   garbage on a history partition is parked (with its bytes), not applied, and
//                  the parking survives a restart without being duplicated
//   StoreIdentity  a store refuses to open under another cluster name or shard count
//
// The two-cluster fixture and the helpers are in tests/two_clusters.h (shared with
// tests/resend_dlq_test.cc).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/message_codec.h"
#include "protocol/shard_hash.h"
#include "protocol/xdc.pb.h"
#include "replicator/daemon.h"
#include "replicator/http_client.h"
#include "replicator/kafka_client.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

TEST_F(TwoClustersTest, ReplicatesHistoriesToThePeer) {
  constexpr int kWorkflows = 50;
  const int64_t events_written =
      WriteWorkflows(east_->http_address(), kNamespace, "wf", kWorkflows);
  ASSERT_EQ(events_written, kWorkflows * 7 + kWorkflows / 2);

  EXPECT_EQ(WaitForConvergence(), static_cast<size_t>(kWorkflows));

  // Whole histories, version histories included, are identical on both sides.
  for (const std::string workflow_id : {"wf-0", "wf-1", "wf-49"}) {
    const std::string target =
        absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=", workflow_id);
    GetHistoryResponse east;
    GetHistoryResponse west;
    absl::Status s = east_client_->Call("GET", target, nullptr, east);
    ASSERT_TRUE(s.ok()) << s;
    s = west_client_->Call("GET", target, nullptr, west);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_TRUE(MessageDifferencer::Equals(east, west)) << "east:\n"
                                                        << east.DebugString() << "west:\n"
                                                        << west.DebugString();

    int index = 0;
    ASSERT_TRUE(absl::SimpleAtoi(absl::StripPrefix(workflow_id, "wf-"), &index));
    const bool completed = index % 2 == 0;  // as WriteWorkflows does
    const int64_t events = completed ? 8 : 7;
    EXPECT_EQ(west.workflow().namespace_id(), namespace_id_);
    EXPECT_EQ(west.next_event_id(), events + 1);
    EXPECT_EQ(west.status(), completed ? WORKFLOW_STATUS_COMPLETED : WORKFLOW_STATUS_RUNNING);
    ASSERT_EQ(west.events_size(), events);
    for (int i = 0; i < west.events_size(); ++i) {
      EXPECT_EQ(west.events(i).event_id(), i + 1);
      EXPECT_EQ(west.events(i).version(), 1);
    }
    EXPECT_EQ(west.events(0).event_type(), WORKFLOW_EXECUTION_STARTED);
    EXPECT_EQ(west.events(0).attributes(), "input-" + workflow_id);
    EXPECT_EQ(west.events(3).event_type(), WORKFLOW_EXECUTION_SIGNALED);
    SignalAttributes signal;
    ASSERT_TRUE(signal.ParseFromString(west.events(4).attributes()));
    EXPECT_EQ(signal.signal_name(), "signal-1");
    EXPECT_EQ(signal.input(), absl::StrCat("input-1-", workflow_id, std::string("\0\xff", 2)));
    // One branch, one item: every event was written at east's version 1.
    ASSERT_EQ(west.version_histories().histories_size(), 1);
    EXPECT_EQ(west.version_histories().current_index(), 0);
    ASSERT_EQ(west.version_histories().histories(0).items_size(), 1);
    EXPECT_EQ(west.version_histories().histories(0).items(0).event_id(), events);
    EXPECT_EQ(west.version_histories().histories(0).items(0).version(), 1);
    EXPECT_FALSE(west.digest().empty());
  }

  // West's progress accounts for every event, and nothing is left to apply.
  StatusResponse status;
  const bool done = WaitUntil([&] {
    status = GetStatus(*west_client_);
    return CaughtUp(status) && EventsApplied(status) == events_written;
  });
  EXPECT_TRUE(done) << status.DebugString();
  EXPECT_EQ(status.cluster(), "west");
  EXPECT_EQ(status.shard_count(), 4);
  ASSERT_EQ(status.shards_size(), 4);
  for (const ShardStatus& shard : status.shards()) {
    // East's live stream, and its backfill stream (idle: docs/migration.md).
    ASSERT_EQ(shard.peers_size(), 2);
    EXPECT_EQ(shard.peers(0).peer(), "east");
    EXPECT_EQ(shard.peers(1).peer(), "east#backfill");
    for (const PeerShardStatus& peer : shard.peers()) {
      EXPECT_EQ(peer.lag_tasks(), 0);
      EXPECT_EQ(peer.tasks_parked(), 0);
    }
  }
  EXPECT_EQ(EventsApplied(status), events_written);
  EXPECT_EQ(status.corrupt_messages(), 0);
  EXPECT_EQ(status.parked_tasks(), 0);
  EXPECT_THAT(status.halted_appliers(), SizeIs(0));
  EXPECT_THAT(GetDlq(*west_client_).tasks(), SizeIs(0));

  // East's publish pointers reach the end of its outboxes: every committed task was delivered
  // (west applied all of them), so every delivery report must have advanced the pointer.
  StatusResponse east_status;
  const bool published = WaitUntil(
      [&] {
        east_status = GetStatus(*east_client_);
        return PublishedAll(east_status);
      },
      std::chrono::seconds(5));
  EXPECT_TRUE(published) << east_status.DebugString();
  int64_t tasks = 0;
  for (const ShardStatus& shard : east_status.shards()) tasks += shard.outbox_next_task_id();
  EXPECT_EQ(tasks, kWorkflows * 4);  // start, two signals, the rest
}

TEST_F(TwoClustersTest, WriteGateRefusesWritesOnTheStandby) {
  const AppendRequest request =
      Append(kNamespace, "gated", 1, {Event(WORKFLOW_EXECUTION_STARTED, "x")});
  const ApiError refused = RequestError(*west_client_, "POST", "/v1/append", JsonOf(request));
  EXPECT_EQ(refused.http_status, 409) << refused.body;
  EXPECT_EQ(refused.error.code(), "FAILED_PRECONDITION");
  EXPECT_EQ(refused.error.active_cluster(), "east");
  EXPECT_THAT(refused.error.message(), HasSubstr("'east'"));
  EXPECT_THAT(refused.error.message(), HasSubstr(kNamespace));
  EXPECT_FALSE(refused.error.retryable());

  // Through Call, the active cluster comes back as the status payload.
  AppendResponse unused;
  absl::Status s = west_client_->Call("POST", "/v1/append", &request, unused);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  ASSERT_TRUE(s.GetPayload(kActiveClusterPayload).has_value());
  EXPECT_EQ(std::string(*s.GetPayload(kActiveClusterPayload)), "east");

  // Signals go through the same gate.
  SignalRequest signal;
  signal.set_namespace_(kNamespace);
  signal.set_workflow_id("gated");
  signal.set_signal_name("s");
  const ApiError signal_refused = RequestError(*west_client_, "POST", "/v1/signal", JsonOf(signal));
  EXPECT_EQ(signal_refused.http_status, 409) << signal_refused.body;
  EXPECT_EQ(signal_refused.error.active_cluster(), "east");

  // Nothing was written on west, and east still accepts the same append.
  EXPECT_EQ(RequestError(*west_client_, "GET",
                         absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=gated"))
                .http_status,
            404);
  AppendResponse accepted;
  s = east_client_->Call("POST", "/v1/append", &request, accepted);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(accepted.version(), 1);
}

TEST_F(TwoClustersTest, BadInputGetsAClearError) {
  HttpClient& east = *east_client_;
  {
    SCOPED_TRACE("malformed JSON");
    const ApiError e = RequestError(east, "POST", "/v1/append", R"({"namespace": "orders",)");
    EXPECT_EQ(e.http_status, 400) << e.body;
    EXPECT_EQ(e.error.code(), "INVALID_ARGUMENT");
    EXPECT_THAT(e.error.message(), HasSubstr("malformed JSON"));
  }
  {
    SCOPED_TRACE("unknown field");
    const ApiError e = RequestError(east, "POST", "/v1/append", R"({"namespaec": "orders"})");
    EXPECT_EQ(e.http_status, 400) << e.body;
    EXPECT_THAT(e.error.message(), HasSubstr("namespaec"));
  }
  {
    SCOPED_TRACE("unknown namespace");
    const ApiError e = RequestError(
        east, "POST", "/v1/append",
        JsonOf(Append("no-such-namespace", "w", 1, {Event(WORKFLOW_EXECUTION_STARTED)})));
    EXPECT_EQ(e.http_status, 404) << e.body;
    EXPECT_EQ(e.error.code(), "NOT_FOUND");
    EXPECT_THAT(e.error.message(), HasSubstr("no-such-namespace"));
  }
  AppendResponse started;
  {
    const AppendRequest start =
        Append(kNamespace, "bad-input", 1,
               {Event(WORKFLOW_EXECUTION_STARTED), Event(TIMER_STARTED), Event(TIMER_FIRED)});
    absl::Status s = east.Call("POST", "/v1/append", &start, started);
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_EQ(started.next_event_id(), 4);
  }
  {
    SCOPED_TRACE("wrong expected_next_event_id");
    const ApiError e = RequestError(
        east, "POST", "/v1/append",
        JsonOf(Append(kNamespace, "bad-input", 7, {Event(TIMER_STARTED)}, started.run_id())));
    EXPECT_EQ(e.http_status, 409) << e.body;
    EXPECT_EQ(e.error.code(), "FAILED_PRECONDITION");
    EXPECT_THAT(e.error.message(), HasSubstr("next event id 4"));
    EXPECT_THAT(e.error.message(), HasSubstr("7"));
  }
  {
    SCOPED_TRACE("unknown route");
    const ApiError e = RequestError(east, "GET", "/v1/no-such-route");
    EXPECT_EQ(e.http_status, 404) << e.body;
    EXPECT_EQ(e.error.code(), "NOT_FOUND");
    EXPECT_THAT(e.error.message(), HasSubstr("/v1/no-such-route"));
  }
  {
    SCOPED_TRACE("wrong method");
    const ApiError e = RequestError(east, "GET", "/v1/append");
    EXPECT_EQ(e.http_status, 405) << e.body;
    EXPECT_THAT(e.error.message(), HasSubstr("use POST"));
  }
  {
    SCOPED_TRACE("history without workflow_id");
    const ApiError e =
        RequestError(east, "GET", absl::StrCat("/v1/history?namespace=", kNamespace));
    EXPECT_EQ(e.http_status, 400) << e.body;
    EXPECT_EQ(e.error.code(), "INVALID_ARGUMENT");
    EXPECT_THAT(e.error.message(), HasSubstr("workflow_id"));
  }
  {
    SCOPED_TRACE("namespace with an unknown cluster");
    RegisterNamespaceRequest request;
    request.set_name("payments");
    request.add_clusters("east");
    request.add_clusters("north");
    request.set_active_cluster("east");
    const ApiError e = RequestError(east, "POST", "/v1/namespaces", JsonOf(request));
    EXPECT_EQ(e.http_status, 400) << e.body;
    EXPECT_EQ(e.error.code(), "INVALID_ARGUMENT");
    EXPECT_THAT(e.error.message(), HasSubstr("north"));
  }
  {
    SCOPED_TRACE("duplicate namespace");
    RegisterNamespaceRequest request;
    request.set_name(kNamespace);
    request.add_clusters("east");
    request.add_clusters("west");
    request.set_active_cluster("east");
    const ApiError e = RequestError(east, "POST", "/v1/namespaces", JsonOf(request));
    EXPECT_EQ(e.http_status, 409) << e.body;
    EXPECT_EQ(e.error.code(), "ALREADY_EXISTS");
    EXPECT_THAT(e.error.message(), HasSubstr(kNamespace));
  }
  {
    SCOPED_TRACE("first event is not WORKFLOW_EXECUTION_STARTED");
    const ApiError e =
        RequestError(east, "POST", "/v1/append",
                     JsonOf(Append(kNamespace, "no-start", 1, {Event(TIMER_STARTED)})));
    EXPECT_EQ(e.http_status, 400) << e.body;
    EXPECT_EQ(e.error.code(), "INVALID_ARGUMENT");
    EXPECT_THAT(e.error.message(), HasSubstr("WORKFLOW_EXECUTION_STARTED"));
  }
  {
    SCOPED_TRACE("append after completion");
    AppendResponse completed;
    const AppendRequest complete =
        Append(kNamespace, "bad-input", 4, {Event(WORKFLOW_EXECUTION_COMPLETED)}, started.run_id());
    absl::Status s = east.Call("POST", "/v1/append", &complete, completed);
    ASSERT_TRUE(s.ok()) << s;
    const ApiError e = RequestError(
        east, "POST", "/v1/append",
        JsonOf(Append(kNamespace, "bad-input", 5, {Event(TIMER_STARTED)}, started.run_id())));
    EXPECT_EQ(e.http_status, 409) << e.body;
    EXPECT_EQ(e.error.code(), "FAILED_PRECONDITION");
    EXPECT_THAT(e.error.message(), HasSubstr("closed"));
    EXPECT_THAT(e.error.message(), HasSubstr("WORKFLOW_STATUS_COMPLETED"));
  }
  {
    SCOPED_TRACE("dlq limit 0");
    const ApiError e = RequestError(east, "GET", "/v1/dlq?limit=0");
    EXPECT_EQ(e.http_status, 400) << e.body;
    EXPECT_EQ(e.error.code(), "INVALID_ARGUMENT");
    EXPECT_THAT(e.error.message(), HasSubstr("limit"));
  }
  // None of the rejected requests wrote anything: only the one good workflow exists.
  absl::StatusOr<ListDigestsResponse> digests = Digests(east, kNamespace);
  ASSERT_TRUE(digests.ok()) << digests.status();
  ASSERT_EQ(digests->workflows_size(), 1);
  EXPECT_EQ(digests->workflows(0).workflow_id(), "bad-input");
  EXPECT_EQ(digests->workflows(0).next_event_id(), 5);
}

// POST /v1/append-batch: each append is answered on its own, in order; the good ones are durable
// and replicate, the bad ones write nothing and say why, as POST /v1/append would.
TEST_F(TwoClustersTest, ABatchOfAppendsIsAnsweredPerAppendAndReplicates) {
  AppendBatchRequest batch;
  *batch.add_appends() = Append(kNamespace, "b1", 1, {Event(WORKFLOW_EXECUTION_STARTED)}, "run-b1");
  *batch.add_appends() = Append(kNamespace, "b1", 2, {Event(TIMER_STARTED)}, "run-b1");
  *batch.add_appends() = Append(kNamespace, "b2", 1, {Event(WORKFLOW_EXECUTION_STARTED)});
  *batch.add_appends() = Append(kNamespace, "b2", 2, {Event(TIMER_STARTED)});  // no run id
  *batch.add_appends() = Append("no-such-namespace", "b3", 1, {Event(WORKFLOW_EXECUTION_STARTED)});
  *batch.add_appends() = Append(kNamespace, "b1", 9, {Event(TIMER_FIRED)}, "run-b1");
  *batch.add_appends() = Append(
      kNamespace, "b1", 3, {Event(TIMER_FIRED), Event(WORKFLOW_EXECUTION_COMPLETED)}, "run-b1");
  AppendBatchResponse answered;
  absl::Status s = east_client_->Call("POST", "/v1/append-batch", &batch, answered);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_THAT(answered.results(), SizeIs(7));
  EXPECT_EQ(answered.failed(), 3);
  const std::vector<int> statuses = {200, 200, 200, 400, 404, 409, 200};
  for (int i = 0; i < 7; ++i) {
    SCOPED_TRACE(answered.results(i).DebugString());
    EXPECT_EQ(answered.results(i).http_status(), statuses[i]) << "append " << i;
    EXPECT_EQ(answered.results(i).has_error(), statuses[i] != 200) << "append " << i;
  }
  EXPECT_EQ(answered.results(1).appended().first_event_id(), 2);  // built on append 0
  EXPECT_EQ(answered.results(6).appended().next_event_id(), 5);
  EXPECT_EQ(answered.results(6).appended().run_id(), "run-b1");
  EXPECT_EQ(answered.results(2).appended().version(), 1);
  EXPECT_THAT(answered.results(3).error().message(), HasSubstr("append 2 of this batch starts"));
  EXPECT_THAT(answered.results(4).error().message(), HasSubstr("no-such-namespace"));
  EXPECT_EQ(answered.results(5).error().code(), "FAILED_PRECONDITION");
  EXPECT_THAT(answered.results(5).error().message(), HasSubstr("next event id 3"));

  // What was acknowledged is durable and replicates; the refused appends wrote nothing.
  EXPECT_EQ(WaitForConvergence(), 2u);
  absl::StatusOr<ListDigestsResponse> digests = Digests(*west_client_, kNamespace);
  ASSERT_TRUE(digests.ok()) << digests.status();
  std::map<std::string, int64_t> next_event_ids;
  for (const auto& workflow : digests->workflows()) {
    next_event_ids[workflow.workflow_id()] = workflow.next_event_id();
  }
  EXPECT_EQ(next_event_ids, (std::map<std::string, int64_t>{{"b1", 5}, {"b2", 2}}));

  // On the standby every append is refused, naming the active cluster.
  AppendBatchRequest on_standby;
  *on_standby.add_appends() = Append(kNamespace, "b4", 1, {Event(WORKFLOW_EXECUTION_STARTED)});
  AppendBatchResponse refused;
  s = west_client_->Call("POST", "/v1/append-batch", &on_standby, refused);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_THAT(refused.results(), SizeIs(1));
  EXPECT_EQ(refused.failed(), 1);
  EXPECT_EQ(refused.results(0).http_status(), 409);
  EXPECT_EQ(refused.results(0).error().active_cluster(), "east");

  // A batch that is not one is refused whole.
  {
    SCOPED_TRACE("empty batch");
    const ApiError e = RequestError(*east_client_, "POST", "/v1/append-batch", "{}");
    EXPECT_EQ(e.http_status, 400) << e.body;
    EXPECT_THAT(e.error.message(), HasSubstr("appends is empty"));
  }
  {
    SCOPED_TRACE("too many appends");
    AppendBatchRequest large;
    for (size_t i = 0; i <= east_tunables_.max_appends_per_batch; ++i) {
      *large.add_appends() =
          Append(kNamespace, absl::StrCat("big-", i), 1, {Event(WORKFLOW_EXECUTION_STARTED)});
    }
    const ApiError e = RequestError(*east_client_, "POST", "/v1/append-batch", JsonOf(large));
    EXPECT_EQ(e.http_status, 400) << e.body;
    EXPECT_THAT(e.error.message(), HasSubstr("at most 1000"));
  }
  {
    SCOPED_TRACE("malformed JSON");
    const ApiError e = RequestError(*east_client_, "POST", "/v1/append-batch", R"({"appends": [)");
    EXPECT_EQ(e.http_status, 400) << e.body;
    EXPECT_THAT(e.error.message(), HasSubstr("malformed JSON"));
  }
  absl::StatusOr<ListDigestsResponse> after = Digests(*east_client_, kNamespace);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->workflows_size(), 2);
}

// Idempotent writes: a client that did not hear an answer retries with the same request id and
// gets the original outcome; nothing is written twice, on the active cluster or, once the events
// replicated, on a standby.
TEST_F(TwoClustersTest, ARetryWithTheSameRequestIdReturnsTheOriginalOutcomeAndWritesNothing) {
  AppendRequest start = Append(kNamespace, "idem", 1,
                               {Event(WORKFLOW_EXECUTION_STARTED, "in"), Event(TIMER_STARTED)});
  start.set_request_id("start-idem");
  AppendResponse started, again;
  ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &start, started).ok());
  EXPECT_FALSE(started.replayed());
  // The retry has no run id either: it gets the run the first request started, not a new one.
  ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &start, again).ok());
  EXPECT_TRUE(again.replayed());
  EXPECT_EQ(again.run_id(), started.run_id());
  EXPECT_EQ(again.first_event_id(), 1);
  EXPECT_EQ(again.next_event_id(), 3);
  EXPECT_EQ(again.version(), 1);

  SignalRequest signal;
  signal.set_namespace_(kNamespace);
  signal.set_workflow_id("idem");
  signal.set_signal_name("pay");
  signal.set_input("invoice-7");
  signal.set_request_id("pay-7");
  AppendResponse signalled, resignalled;
  ASSERT_TRUE(east_client_->Call("POST", "/v1/signal", &signal, signalled).ok());
  ASSERT_TRUE(east_client_->Call("POST", "/v1/signal", &signal, resignalled).ok());
  EXPECT_EQ(signalled.first_event_id(), 3);
  EXPECT_FALSE(signalled.replayed());
  EXPECT_TRUE(resignalled.replayed());
  EXPECT_EQ(resignalled.first_event_id(), 3);

  // The same id for a different request is refused and writes nothing.
  SignalRequest other = signal;
  other.set_input("invoice-8");
  ApiError reused = RequestError(*east_client_, "POST", "/v1/signal", JsonOf(other));
  EXPECT_EQ(reused.http_status, 409) << reused.body;
  EXPECT_THAT(reused.error.message(),
              AllOf(HasSubstr("request_id 'pay-7' was already used"), HasSubstr("event 3"),
                    HasSubstr("use a new request_id")));
  AppendRequest elsewhere = Append(kNamespace, "idem-2", 1, {Event(WORKFLOW_EXECUTION_STARTED)});
  elsewhere.set_request_id("pay-7");
  reused = RequestError(*east_client_, "POST", "/v1/append", JsonOf(elsewhere));
  EXPECT_EQ(reused.http_status, 409) << reused.body;
  EXPECT_THAT(reused.error.message(), HasSubstr("workflow 'idem'"));

  // Malformed ids are refused.
  for (const std::string& bad : {std::string("has space"), std::string(129, 'x')}) {
    SignalRequest malformed = signal;
    malformed.set_request_id(bad);
    ApiError e = RequestError(*east_client_, "POST", "/v1/signal", JsonOf(malformed));
    EXPECT_EQ(e.http_status, 400) << e.body;
    EXPECT_THAT(e.error.message(), HasSubstr("request_id"));
  }

  // Two appends of one batch with one id: the second finds the first still being written.
  AppendBatchRequest batch;
  *batch.add_appends() = Append(kNamespace, "idem", 4, {Event(TIMER_FIRED)}, started.run_id());
  *batch.add_appends() = Append(kNamespace, "idem", 4, {Event(TIMER_FIRED)}, started.run_id());
  batch.mutable_appends(0)->set_request_id("fire");
  batch.mutable_appends(1)->set_request_id("fire");
  AppendBatchResponse answered;
  ASSERT_TRUE(east_client_->Call("POST", "/v1/append-batch", &batch, answered).ok());
  ASSERT_THAT(answered.results(), SizeIs(2));
  EXPECT_EQ(answered.results(0).http_status(), 200);
  EXPECT_EQ(answered.results(1).http_status(), 503);
  EXPECT_TRUE(answered.results(1).error().retryable());
  EXPECT_THAT(answered.results(1).error().message(), HasSubstr("still being written"));

  // The run holds each request's events once, on east and on west; the standby answers a retry
  // from the replicated events, before its write gate.
  GetHistoryResponse history;
  ASSERT_TRUE(east_client_
                  ->Call("GET",
                         absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=idem"),
                         nullptr, history)
                  .ok());
  EXPECT_EQ(history.next_event_id(), 5);
  EXPECT_EQ(history.events(0).request().request_id(), "start-idem");
  EXPECT_EQ(history.events(0).request().event_count(), 2);
  EXPECT_FALSE(history.events(1).has_request());
  EXPECT_EQ(history.events(2).request().request_id(), "pay-7");
  EXPECT_EQ(WaitForConvergence(), 1u);
  AppendResponse on_west;
  ASSERT_TRUE(west_client_->Call("POST", "/v1/signal", &signal, on_west).ok());
  EXPECT_TRUE(on_west.replayed());
  EXPECT_EQ(on_west.first_event_id(), 3);
  EXPECT_EQ(on_west.run_id(), started.run_id());
  // A new request on the standby is still refused by the gate.
  SignalRequest fresh = signal;
  fresh.set_request_id("pay-9");
  EXPECT_EQ(RequestError(*west_client_, "POST", "/v1/signal", JsonOf(fresh)).http_status, 409);

  absl::StatusOr<HttpResult> metrics = east_client_->Request("GET", "/metrics", "");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(MetricSum(metrics->body, "xdc_appends_total", {R"(result="replayed")"}), 2);
}

TEST_F(TwoClustersTest, CorruptKafkaMessagesAreParkedWithTheirBytes) {
  constexpr int32_t kPartition = 1;
  WriteWorkflows(east_->http_address(), kNamespace, "before", 8);
  WaitForConvergence();
  const int64_t shard_tasks_before =
      GetStatus(*east_client_).shards(kPartition).outbox_next_task_id();

  // Two bad messages on east's history partition 1: plain garbage, and a frame with the right
  // magic whose checksum does not match its (otherwise valid) payload.
  const std::string garbage("definitely not a frame \x00\x01\xfe\xff", 27);
  HistoryMessage message;
  ReplicationTask* task = message.mutable_task();
  task->set_task_id(999);
  task->set_shard(kPartition);
  task->set_source_cluster("east");
  task->mutable_workflow()->set_namespace_id(namespace_id_);
  task->mutable_workflow()->set_workflow_id("forged");
  task->mutable_workflow()->set_run_id("forged-run");
  HistoryEvent* event = task->add_events();
  event->set_event_id(1);
  event->set_version(1);
  event->set_event_type(WORKFLOW_EXECUTION_STARTED);
  VersionHistoryItem* item = task->add_version_history_items();
  item->set_event_id(1);
  item->set_version(1);
  std::string bad_checksum = EncodeFrame(message);
  ASSERT_EQ(bad_checksum.substr(0, 4), "XDC1");
  bad_checksum[4] = static_cast<char>(bad_checksum[4] ^ 0x5a);
  {
    std::mutex mu;
    std::vector<std::pair<uint64_t, absl::Status>> delivered;
    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
        east_->kafka_bootstrap(), "test", [&](uint64_t token, const absl::Status& status) {
          std::lock_guard<std::mutex> lock(mu);
          delivered.emplace_back(token, status);
        });
    ASSERT_TRUE(producer.ok()) << producer.status();
    ASSERT_TRUE(
        (*producer)->Produce(HistoryTopic("east", TestTopicPrefix()), kPartition, garbage, 1).ok());
    ASSERT_TRUE((*producer)
                    ->Produce(HistoryTopic("east", TestTopicPrefix()), kPartition, bad_checksum, 2)
                    .ok());
    absl::Status flushed = (*producer)->Flush(10000);
    ASSERT_TRUE(flushed.ok()) << flushed;
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_THAT(delivered, SizeIs(2));
    for (const auto& [token, status] : delivered) EXPECT_TRUE(status.ok()) << token << status;
  }

  // Real traffic after the bad messages, until some of it lands on partition 1 too.
  int batch = 0;
  do {
    WriteWorkflows(east_->http_address(), kNamespace, absl::StrCat("after", batch++), 12);
  } while (GetStatus(*east_client_).shards(kPartition).outbox_next_task_id() ==
               shard_tasks_before &&
           batch < 10);
  ASSERT_GT(GetStatus(*east_client_).shards(kPartition).outbox_next_task_id(), shard_tasks_before);

  const size_t workflows = WaitForConvergence();
  EXPECT_EQ(workflows, 8u + 12u * batch);  // the forged workflow was not applied

  StatusResponse status;
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return CaughtUp(status) && status.parked_tasks() >= 2;
  })) << status.DebugString();
  EXPECT_GE(status.corrupt_messages(), 2);
  EXPECT_GE(status.parked_tasks(), 2);
  EXPECT_THAT(status.halted_appliers(), SizeIs(0));
  EXPECT_EQ(status.shards(kPartition).peers(0).tasks_parked(), 2);

  // The DLQ holds both messages, byte for byte (base64 in the JSON).
  absl::StatusOr<HttpResult> raw = west_client_->Request("GET", "/v1/dlq");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_THAT(raw->body, HasSubstr(absl::Base64Escape(garbage)));
  EXPECT_THAT(raw->body, HasSubstr(absl::Base64Escape(bad_checksum)));
  const ListParkedResponse dlq = GetDlq(*west_client_);
  std::vector<const ParkedTask*> corrupt;
  for (const ParkedTask& parked : dlq.tasks()) {
    if (parked.reason() == PARK_REASON_CORRUPT_MESSAGE) corrupt.push_back(&parked);
  }
  ASSERT_THAT(corrupt, SizeIs(2)) << dlq.DebugString();
  std::sort(corrupt.begin(), corrupt.end(), [](const ParkedTask* a, const ParkedTask* b) {
    return a->kafka_offset() < b->kafka_offset();
  });
  EXPECT_EQ(corrupt[0]->raw_message(), garbage);
  EXPECT_EQ(corrupt[1]->raw_message(), bad_checksum);
  EXPECT_EQ(corrupt[1]->kafka_offset(), corrupt[0]->kafka_offset() + 1);
  EXPECT_THAT(corrupt[0]->error(), HasSubstr("magic"));
  EXPECT_THAT(corrupt[1]->error(), HasSubstr("checksum"));
  for (const ParkedTask* parked : corrupt) {
    EXPECT_EQ(parked->source_cluster(), "east");
    EXPECT_EQ(parked->shard(), kPartition);
    EXPECT_GT(parked->parked_unix_micros(), 0);
  }
  EXPECT_NE(corrupt[0]->sequence(), corrupt[1]->sequence());

  absl::StatusOr<HttpResult> metrics = west_client_->Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr("xdc_corrupt_messages_total"));
  EXPECT_GE(MetricSum(metrics->body, "xdc_corrupt_messages_total"), 2) << metrics->body;

  // Restart west on the same store: the parking was committed with the offsets, so the bad
  // messages are neither lost from the DLQ nor parked again.
  west_client_.reset();
  west_.reset();
  ASSERT_NO_FATAL_FAILURE(StartWest());
  WriteWorkflows(east_->http_address(), kNamespace, "restarted", 8);
  EXPECT_EQ(WaitForConvergence(), workflows + 8);
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return CaughtUp(status);
  })) << status.DebugString();
  EXPECT_EQ(status.parked_tasks(), static_cast<int64_t>(dlq.tasks_size()));
  EXPECT_EQ(status.shards(kPartition).peers(0).tasks_parked(), 2);
  const ListParkedResponse after = GetDlq(*west_client_);
  EXPECT_TRUE(MessageDifferencer::Equals(after, dlq)) << "before restart:\n"
                                                      << dlq.DebugString() << "after:\n"
                                                      << after.DebugString();
}

TEST(StoreIdentityTest, RefusesAnotherClusterOrShardCount) {
  ScopedDir dir("store");
  {
    absl::StatusOr<std::unique_ptr<Daemon>> daemon =
        Daemon::Start(MakeConfig("east", dir.path(), ""));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    (*daemon)->Stop();
  }
  {
    absl::StatusOr<std::unique_ptr<Daemon>> daemon =
        Daemon::Start(MakeConfig("west", dir.path(), ""));
    ASSERT_FALSE(daemon.ok());
    EXPECT_EQ(daemon.status().code(), absl::StatusCode::kFailedPrecondition) << daemon.status();
    EXPECT_THAT(daemon.status().message(), HasSubstr("'east'"));
    EXPECT_THAT(daemon.status().message(), HasSubstr("'west'"));
  }
  {
    absl::StatusOr<std::unique_ptr<Daemon>> daemon =
        Daemon::Start(MakeConfig("east", dir.path(), "", /*shard_count=*/8));
    ASSERT_FALSE(daemon.ok());
    EXPECT_EQ(daemon.status().code(), absl::StatusCode::kFailedPrecondition) << daemon.status();
    EXPECT_THAT(daemon.status().message(), HasSubstr("shard_count"));
    EXPECT_THAT(daemon.status().message(), HasSubstr("8"));
  }
  {
    // The refused opens left the store as it was.
    absl::StatusOr<std::unique_ptr<Daemon>> daemon =
        Daemon::Start(MakeConfig("east", dir.path(), ""));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
  }
}

}  // namespace
}  // namespace xdc

namespace xdc {
namespace {

TEST_F(TwoClustersTest, AnAppendTooLargeForOneKafkaMessageIsRefusedUpFront) {
  // Each event is within the per-event bound, together they exceed one replication task.
  const std::string half_mib(500 << 10, 'x');
  AppendRequest request = Append(
      kNamespace, "big", 1,
      {Event(WORKFLOW_EXECUTION_STARTED, half_mib), Event(ACTIVITY_TASK_SCHEDULED, half_mib)});
  ApiError refused = RequestError(*east_client_, "POST", "/v1/append", JsonOf(request));
  EXPECT_EQ(refused.http_status, 400);
  EXPECT_EQ(refused.error.code(), "INVALID_ARGUMENT");
  EXPECT_THAT(refused.error.message(), HasSubstr("split it into smaller appends"));
  // Nothing was written, so nothing blocks the stream: the same workflow in two appends
  // replicates.
  AppendResponse first;
  AppendRequest start = Append(kNamespace, "big", 1, {Event(WORKFLOW_EXECUTION_STARTED, half_mib)});
  ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &start, first).ok());
  AppendResponse second;
  AppendRequest next =
      Append(kNamespace, "big", 2, {Event(ACTIVITY_TASK_SCHEDULED, half_mib)}, first.run_id());
  ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &next, second).ok());
  EXPECT_EQ(WaitForConvergence(), 1u);
}

TEST_F(TwoClustersTest, TaskIdsSkippedOverAreReportedMissingUntilTheyArrive) {
  constexpr int32_t kPartition = 1;
  constexpr int64_t kAhead = 5;
  WriteWorkflows(east_->http_address(), kNamespace, "before", 8);
  WaitForConvergence();
  const int64_t next_task = GetStatus(*east_client_).shards(kPartition).outbox_next_task_id();

  // A valid task of east's shard 1 whose id is kAhead ahead of east's next: to west, tasks
  // [next_task, next_task + kAhead) were skipped over, as when a delivery timed out.
  HistoryMessage message;
  ReplicationTask* task = message.mutable_task();
  task->set_task_id(next_task + kAhead);
  task->set_shard(kPartition);
  task->set_source_cluster("east");
  task->mutable_workflow()->set_namespace_id("elsewhere");
  task->mutable_workflow()->set_workflow_id("ahead");
  task->mutable_workflow()->set_run_id("ahead-run");
  HistoryEvent* event = task->add_events();
  event->set_event_id(1);
  event->set_version(1);
  event->set_event_type(WORKFLOW_EXECUTION_STARTED);
  VersionHistoryItem* item = task->add_version_history_items();
  item->set_event_id(1);
  item->set_version(1);
  {
    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
        east_->kafka_bootstrap(), "test",
        [](uint64_t, const absl::Status& status) { EXPECT_TRUE(status.ok()) << status; });
    ASSERT_TRUE(producer.ok()) << producer.status();
    ASSERT_TRUE(
        (*producer)
            ->Produce(HistoryTopic("east", TestTopicPrefix()), kPartition, EncodeFrame(message), 1)
            .ok());
    ASSERT_TRUE((*producer)->Flush(10000).ok());
  }
  StatusResponse status;
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return status.shards(kPartition).peers(0).missing_tasks() == kAhead;
  })) << status.shards(kPartition).DebugString();
  absl::StatusOr<HttpResult> metrics = west_client_->Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(MetricSum(metrics->body, "xdc_replication_missing_tasks"), kAhead);

  // East's real tasks with those ids arrive: nothing is missing any more.
  int batch = 0;
  while (GetStatus(*east_client_).shards(kPartition).outbox_next_task_id() < next_task + kAhead &&
         batch < 20) {
    WriteWorkflows(east_->http_address(), kNamespace, absl::StrCat("after", batch++), 4);
  }
  WaitForConvergence();
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return status.shards(kPartition).peers(0).missing_tasks() == 0;
  })) << status.shards(kPartition).DebugString();
}

// East still believes it is active at version 1, but a run of workflow "split" started at version
// 2 (west, forced over during a partition) has reached it before west's record did. A new run
// east would start now is older by the rule every cluster uses to pick a workflow's current run
// (first version, then start time): it is refused, naming the newer run. (East started it and
// made it current here only, while every other cluster kept the version-2 run current: the two
// pointed the workflow id at different runs for good.)
TEST_F(TwoClustersTest, ANewRunOlderThanTheWorkflowsCurrentRunIsRefused) {
  const int32_t shard = ShardFor(namespace_id_, "split", GetStatus(*east_client_).shard_count());
  HistoryMessage message;
  ReplicationTask* task = message.mutable_task();
  task->set_task_id(0);
  task->set_shard(shard);
  task->set_source_cluster("west");
  task->mutable_workflow()->set_namespace_id(namespace_id_);
  task->mutable_workflow()->set_workflow_id("split");
  task->mutable_workflow()->set_run_id("run-at-v2");
  HistoryEvent* event = task->add_events();
  event->set_event_id(1);
  event->set_version(2);
  event->set_event_time_unix_micros(1);
  event->set_event_type(WORKFLOW_EXECUTION_STARTED);
  VersionHistoryItem* item = task->add_version_history_items();
  item->set_event_id(1);
  item->set_version(2);
  {
    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
        east_->kafka_bootstrap(), "test",
        [](uint64_t, const absl::Status& status) { EXPECT_TRUE(status.ok()) << status; });
    ASSERT_TRUE(producer.ok()) << producer.status();
    ASSERT_TRUE(
        (*producer)
            ->Produce(HistoryTopic("west", TestTopicPrefix()), shard, EncodeFrame(message), 1)
            .ok());
    ASSERT_TRUE((*producer)->Flush(10000).ok());
  }
  GetHistoryResponse history;
  ASSERT_TRUE(WaitUntil([&] {
    return east_client_
        ->Call("GET", absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=split"),
               nullptr, history)
        .ok();
  }));
  EXPECT_EQ(history.workflow().run_id(), "run-at-v2");

  AppendRequest start = Append(kNamespace, "split", 1, {Event(WORKFLOW_EXECUTION_STARTED)});
  ApiError refused = RequestError(*east_client_, "POST", "/v1/append", JsonOf(start));
  EXPECT_EQ(refused.http_status, 409);
  EXPECT_THAT(refused.error.message(),
              AllOf(HasSubstr("already has run 'run-at-v2', started at failover version 2"),
                    HasSubstr("send writes to the active cluster")));
  // Nothing was written: the workflow still has its one run.
  ASSERT_TRUE(east_client_
                  ->Call("GET",
                         absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=split"),
                         nullptr, history)
                  .ok());
  EXPECT_EQ(history.workflow().run_id(), "run-at-v2");
  absl::StatusOr<ListDigestsResponse> digests = Digests(*east_client_, kNamespace);
  ASSERT_TRUE(digests.ok()) << digests.status();
  int runs_of_split = 0;
  for (const WorkflowDigest& digest : digests->workflows()) {
    if (digest.workflow_id() != "split") continue;
    ++runs_of_split;
    EXPECT_TRUE(digest.current());
  }
  EXPECT_EQ(runs_of_split, 1);
}

TEST_F(TwoClustersTest, ConcurrentSignalsToOneWorkflowAllLandInOrderOnBothClusters) {
  constexpr int kThreads = 8;
  constexpr int kSignalsPerThread = 40;
  AppendResponse started;
  AppendRequest start = Append(kNamespace, "busy", 1, {Event(WORKFLOW_EXECUTION_STARTED)});
  ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &start, started).ok());
  std::atomic<int> acknowledged{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      HttpClient client(east_->http_address());
      for (int i = 0; i < kSignalsPerThread; ++i) {
        SignalRequest signal;
        signal.set_namespace_(kNamespace);
        signal.set_workflow_id("busy");
        signal.set_signal_name(absl::StrCat("s-", t, "-", i));
        AppendResponse response;
        if (client.Call("POST", "/v1/signal", &signal, response).ok()) ++acknowledged;
      }
    });
  }
  for (std::thread& sender : senders) sender.join();
  ASSERT_EQ(acknowledged.load(), kThreads * kSignalsPerThread);

  // Every acknowledged signal is an event of the run, ids contiguous, each name once.
  GetHistoryResponse history;
  ASSERT_TRUE(east_client_
                  ->Call("GET",
                         absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=busy"),
                         nullptr, history)
                  .ok());
  EXPECT_EQ(history.next_event_id(), 2 + kThreads * kSignalsPerThread);
  std::set<std::string> names;
  for (int i = 0; i < history.events_size(); ++i) {
    EXPECT_EQ(history.events(i).event_id(), i + 1);
    if (i == 0) continue;
    SignalAttributes attributes;
    ASSERT_TRUE(attributes.ParseFromString(history.events(i).attributes()));
    names.insert(attributes.signal_name());
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kThreads * kSignalsPerThread));
  // The standby applies the tasks in order: no gap parked, same history.
  EXPECT_EQ(WaitForConvergence(), 1u);
  // The status counters follow the store's commit (they are updated right after it).
  StatusResponse west;
  EXPECT_TRUE(WaitUntil([&] {
    west = GetStatus(*west_client_);
    return EventsApplied(west) == 1 + kThreads * kSignalsPerThread;
  })) << west.DebugString();
  EXPECT_EQ(west.parked_tasks(), 0) << west.DebugString();
}

TEST_F(TwoClustersTest, ApplierHaltsWhenThePeerPartitionLostWhatItApplied) {
  ASSERT_GT(WriteWorkflows(east_->http_address(), kNamespace, "before", 20), 0);
  WaitForConvergence();
  // West comes back against a Kafka that never held those tasks, as after a topic was
  // recreated or a broker lost its log: its stored offsets are beyond every partition's end.
  west_client_.reset();
  west_.reset();
  absl::StatusOr<std::unique_ptr<EmbeddedKafka>> empty_kafka = EmbeddedKafka::Start(1);
  ASSERT_TRUE(empty_kafka.ok()) << empty_kafka.status();
  for (const char* cluster : {"east", "west"}) {
    ASSERT_TRUE((*empty_kafka)->CreateTopic(HistoryTopic(cluster, TestTopicPrefix()), 4).ok());
    ASSERT_TRUE((*empty_kafka)->CreateTopic(ControlTopic(cluster, TestTopicPrefix()), 1).ok());
    ASSERT_TRUE((*empty_kafka)->CreateTopic(BackfillTopic(cluster, TestTopicPrefix()), 4).ok());
  }
  Tunables tunables;
  tunables.truncation_confirm_ms = 300;
  absl::StatusOr<std::unique_ptr<Daemon>> west =
      Daemon::Start(MakeConfig("west", west_dir_.path(), (*empty_kafka)->bootstrap()), tunables);
  ASSERT_TRUE(west.ok()) << west.status();
  west_ = *std::move(west);
  west_client_ = std::make_unique<HttpClient>(west_->http_address());

  StatusResponse status;
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*west_client_);
    return status.halted_appliers_size() > 0;
  })) << "west kept applying from a truncated partition: "
      << status.DebugString();
  EXPECT_THAT(status.halted_appliers(0), HasSubstr("topic was recreated or Kafka lost data"));
  absl::StatusOr<HttpResult> metrics = west_client_->Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(MetricSum(metrics->body, "xdc_applier_halted"), 1);
  west_client_.reset();
  west_.reset();  // before its Kafka goes away
}

}  // namespace
}  // namespace xdc

namespace xdc {
namespace {

TEST(NamespaceRegistryTest, ANameRegisteredTwiceMeansTheLowerIdEverywhere) {
  ScopedDir dir("registry");
  const DaemonConfig config = MakeConfig("east", dir.path(), "");
  StoreOptions options;
  options.path = dir.path();
  options.identity.set_cluster_name("east");
  options.identity.set_shard_count(config.shard_count());
  options.identity.set_initial_failover_version(1);
  options.identity.set_failover_version_increment(100);
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  std::string local_id;
  {
    NamespaceRegistry registry(**store, config);
    ASSERT_TRUE(registry.Load().ok());
    RegisterNamespaceRequest request;
    request.set_name("orders");
    request.add_clusters("east");
    request.add_clusters("west");
    request.set_active_cluster("east");
    absl::StatusOr<NamespaceRecord> local = registry.Register(request);
    ASSERT_TRUE(local.ok()) << local.status();
    local_id = local->id();
    // West registered "orders" too, before either heard of the other.
    NamespaceRecord lower = *local;
    lower.set_id(std::string(local_id.size(), '0'));
    lower.set_active_cluster("west");
    lower.set_failover_version(2);
    NamespaceRecord higher = lower;
    higher.set_id(std::string(local_id.size(), 'z'));
    ASSERT_TRUE(registry.Merge(higher, "west").ok());
    EXPECT_EQ(registry.FindByName("orders")->id(), local_id);  // lower than "zzz..."
    ASSERT_TRUE(registry.Merge(lower, "west").ok());
    EXPECT_EQ(registry.FindByName("orders")->id(), lower.id());
    EXPECT_EQ(registry.List().size(), 3u);  // every record is kept
  }
  // The same answer after a restart, whatever order the records load in.
  NamespaceRegistry reloaded(**store, config);
  ASSERT_TRUE(reloaded.Load().ok());
  EXPECT_EQ(reloaded.FindByName("orders")->id(), std::string(local_id.size(), '0'));
  EXPECT_TRUE(reloaded.FindById(local_id).has_value());
}

}  // namespace
}  // namespace xdc

namespace xdc {
namespace {

TEST(HttpServerTest, AnIdleConnectionIsClosedAfterTheIdleTimeout) {
  ScopedDir dir("idle");
  Tunables tunables;
  tunables.http_idle_timeout_ms = 200;
  absl::StatusOr<std::unique_ptr<Daemon>> daemon =
      Daemon::Start(MakeConfig("east", dir.path(), ""), tunables);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  // A client whose kept-alive connection goes idle before the probe connection below.
  HttpClient client((*daemon)->http_address());
  ASSERT_TRUE(client.Request("GET", "/healthz").ok());
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons((*daemon)->http_port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  // Send nothing. The server must close the connection; our own bound on waiting is 10 s.
  timeval bound{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  char byte = 0;
  const auto started = std::chrono::steady_clock::now();
  const ssize_t n = ::recv(fd, &byte, 1, 0);
  const auto waited = std::chrono::steady_clock::now() - started;
  ::close(fd);
  EXPECT_EQ(n, 0) << "expected the server to close the idle connection (errno " << errno << ")";
  EXPECT_LT(waited, std::chrono::seconds(10));
  // The client's connection was closed as idle too; a POST on it reconnects first instead of
  // failing with an unknown outcome.
  RegisterNamespaceRequest request;
  request.set_name("after-idle");
  request.add_clusters("east");
  request.set_active_cluster("east");
  NamespaceRecord record;
  absl::Status registered = client.Call("POST", "/v1/namespaces", &request, record);
  EXPECT_TRUE(registered.ok()) << registered;
}

}  // namespace
}  // namespace xdc
