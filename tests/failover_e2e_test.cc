// Namespace failover end to end, with real processes (tests/process_clusters.h: xdc-kafka-mock,
// xdcd east and xdcd west) driven the way an operator's runbook drives them: through `xdcctl`
// subprocesses, while a client load (tests/ledger_client.h) keeps writing and records every
// acknowledged event. What each test asserts is what a user depends on: no acknowledged write is
// lost, a graceful handover forks nothing, a forced failover's damage is reported exactly, and an
// unknown outcome is reported as unknown, never guessed.
//
// Every wait polls observable state (a record, an acknowledgement count, converged digests)
// until a deadline.
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"
#include "tests/ledger_client.h"
#include "tests/process_clusters.h"
#include "tests/run_command.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

constexpr char kNs[] = "orders";
constexpr size_t kAcksPerPhase = 200;                           // acks awaited per version
constexpr absl::Duration kLoadTimeout = absl::Seconds(30);      // that many acks arrive
constexpr absl::Duration kDecisionTimeout = absl::Seconds(30);  // a failover is decided
constexpr absl::Duration kConvergeTimeout = absl::Seconds(60);  // digests equal
constexpr absl::Duration kPoll = absl::Milliseconds(50);        // re-check a condition

// ---------------------------------------------------------------------------------------------
// xdcctl as a subprocess
// ---------------------------------------------------------------------------------------------

// Runs `xdcctl --address <cluster> <args>` to completion and echoes it to stderr, as a runbook
// would show it.
CommandResult Xdcctl(const Cluster& cluster, const std::string& args) {
  const std::string command =
      absl::StrCat(BinPath("xdcctl"), " --address ", cluster.endpoint.address(), " ", args);
  const absl::Time start = absl::Now();
  CommandResult result = RunCommand(command);
  std::fprintf(
      stderr, "$ xdcctl --address <%s> %s   # exit %d after %s\n%s", cluster.name.c_str(),
      args.c_str(), result.exit_code,
      absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))).c_str(),
      result.output.c_str());
  return result;
}

// The data rows of `xdcctl namespace history`: KIND FROM->TO VERSION COMPLETED REFUSED(s) FORKED
// LOST REAPPLIED DROPPED, split on whitespace.
struct HistoryRow {
  std::string kind, from_to, versions;
  double refused_seconds = -1;
  int64_t forked = -1, lost = -1, reapplied = -1, dropped = -1;
};

std::vector<HistoryRow> ParseHistoryTable(const std::string& output) {
  std::vector<HistoryRow> rows;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    std::vector<std::string> cells = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (cells.size() != 9) continue;
    if (cells[0] != "graceful" && cells[0] != "forced" && cells[0] != "cancelled") continue;
    HistoryRow row{cells[0], cells[1], cells[2]};
    if (!absl::SimpleAtod(cells[4], &row.refused_seconds) ||
        !absl::SimpleAtoi(cells[5], &row.forked) || !absl::SimpleAtoi(cells[6], &row.lost) ||
        !absl::SimpleAtoi(cells[7], &row.reapplied) || !absl::SimpleAtoi(cells[8], &row.dropped)) {
      continue;
    }
    rows.push_back(row);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Reading a cluster
// ---------------------------------------------------------------------------------------------

absl::StatusOr<NamespaceRecord> Record(const Cluster& cluster) {
  HttpClient client(cluster.endpoint.address());
  NamespaceRecord record;
  if (absl::Status s = client.Call("GET", absl::StrCat("/v1/namespaces/", kNs), nullptr, record);
      !s.ok()) {
    return s;
  }
  return record;
}

absl::StatusOr<DescribeNamespaceResponse> Describe(const Cluster& cluster) {
  HttpClient client(cluster.endpoint.address());
  DescribeNamespaceResponse response;
  if (absl::Status s =
          client.Call("GET", absl::StrCat("/v1/namespaces/", kNs, "/describe"), nullptr, response);
      !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<GetHistoryResponse> History(const Cluster& cluster, const std::string& workflow) {
  HttpClient client(cluster.endpoint.address());
  GetHistoryResponse history;
  if (absl::Status s =
          client.Call("GET", absl::StrCat("/v1/history?namespace=", kNs, "&workflow_id=", workflow),
                      nullptr, history);
      !s.ok()) {
    return s;
  }
  return history;
}

// Polls `condition` every kPoll until it holds (true) or `timeout` passes (false).
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(kPoll);
  }
}

std::string Show(const absl::StatusOr<NamespaceRecord>& record) {
  return record.ok() ? record->ShortDebugString() : record.status().ToString();
}

// A write to `cluster` as a client sends it; returns the refusal (or a 200 with an empty error).
ApiError TryAppend(const Cluster& cluster, const std::string& workflow) {
  HttpClient client(cluster.endpoint.address());
  return RequestError(client, "POST", "/v1/append",
                      JsonOf(Append(kNs, workflow, 1, {Event(WORKFLOW_EXECUTION_STARTED)})));
}

// ---------------------------------------------------------------------------------------------
// The load: a LedgerClient on its own thread, stopped (and joined) at the latest when it goes
// out of scope, so an early ASSERT return leaks no thread.
// ---------------------------------------------------------------------------------------------

class Load {
 public:
  Load(LedgerClient::AddressOf address_of, LedgerClient::TransportErrors transport_errors)
      : ledger_(std::move(address_of), "east", kNs, transport_errors),
        thread_([this] { ledger_.Run(stop_); }) {}
  ~Load() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  LedgerClient& ledger() { return ledger_; }

  // Waits until `n` events were acknowledged at `version` (0: at any version).
  bool AwaitAcks(size_t n, int64_t version = 0) {
    return WaitFor(
        [&] { return (version == 0 ? ledger_.acked_count() : ledger_.acked_at(version)) >= n; },
        kLoadTimeout);
  }
  std::set<int64_t> versions() {
    std::lock_guard<std::mutex> lock(ledger_.mu_);
    return ledger_.versions_;
  }

 private:
  LedgerClient ledger_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// The fixture: namespace "orders" active on east (version 1); west owns 2 mod 100
// ---------------------------------------------------------------------------------------------

class FailoverE2eTest : public ProcessClustersTest {
 protected:
  FailoverE2eTest() : ProcessClustersTest(kNs) {}

  Cluster& ClusterNamed(const std::string& name) { return name == "east" ? *east_ : *west_; }

  LedgerClient::AddressOf AddressOf() {
    return [this](const std::string& cluster) { return ClusterNamed(cluster).endpoint.address(); };
  }

  // Waits until both clusters hold the same records (active cluster, version, state ACTIVE) and
  // returns it: a failover's single outcome, as every cluster sees it.
  NamespaceRecord AwaitAgreedRecord() {
    absl::StatusOr<NamespaceRecord> east, west;
    const bool agreed = WaitFor(
        [&] {
          east = Record(*east_);
          west = Record(*west_);
          return east.ok() && west.ok() && east->state() == NAMESPACE_STATE_ACTIVE &&
                 west->state() == NAMESPACE_STATE_ACTIVE &&
                 east->active_cluster() == west->active_cluster() &&
                 east->failover_version() == west->failover_version() &&
                 east->failover_history_size() == west->failover_history_size();
        },
        kDecisionTimeout);
    EXPECT_TRUE(agreed) << "the clusters did not agree on one outcome within " << kDecisionTimeout
                        << "\neast: " << Show(east) << "\nwest: " << Show(west);
    return east.ok() ? *east : NamespaceRecord();
  }

  // Waits until both clusters hold the same workflows with the same digests.
  void AwaitConvergence(ListDigestsResponse* converged = nullptr) {
    std::string last;
    const bool equal = WaitFor(
        [&] {
          HttpClient east(east_->endpoint.address());
          HttpClient west(west_->endpoint.address());
          absl::StatusOr<ListDigestsResponse> e = Digests(east, kNs);
          absl::StatusOr<ListDigestsResponse> w = Digests(west, kNs);
          if (!e.ok() || !w.ok()) {
            last = absl::StrCat(e.status().ToString(), " / ", w.status().ToString());
            return false;
          }
          last = absl::StrCat("east has ", e->workflows_size(), " workflows, west ",
                              w->workflows_size());
          if (!google::protobuf::util::MessageDifferencer::Equals(*e, *w)) return false;
          if (converged != nullptr) *converged = *e;
          return true;
        },
        kConvergeTimeout);
    ASSERT_TRUE(equal) << "digests did not converge within " << kConvergeTimeout << ": " << last;
  }

  // Every acknowledged event is on both clusters at the version it was acknowledged with, and
  // every workflow of the namespace has exactly one branch (nothing forked) on both.
  void ExpectEveryAckOnBothAndNoForks(LedgerClient& ledger) {
    std::lock_guard<std::mutex> lock(ledger.mu_);
    ASSERT_FALSE(ledger.acked_.empty());
    for (Cluster* cluster : {east_.get(), west_.get()}) {
      HttpClient client(cluster->endpoint.address());
      absl::StatusOr<ListDigestsResponse> digests = Digests(client, kNs);
      ASSERT_TRUE(digests.ok()) << digests.status();
      std::map<std::string, GetHistoryResponse> histories;
      for (const WorkflowDigest& workflow : digests->workflows()) {
        absl::StatusOr<GetHistoryResponse> history = History(*cluster, workflow.workflow_id());
        ASSERT_TRUE(history.ok()) << history.status();
        EXPECT_EQ(history->version_histories().histories_size(), 1)
            << cluster->name << " " << workflow.workflow_id()
            << " forked: " << history->version_histories().ShortDebugString();
        histories[workflow.workflow_id()] = *std::move(history);
      }
      for (const auto& [workflow, event_id, version] : ledger.acked_) {
        auto it = histories.find(workflow);
        ASSERT_NE(it, histories.end()) << cluster->name << " lost workflow " << workflow;
        ASSERT_GE(it->second.events_size(), event_id)
            << cluster->name << " lost acknowledged event " << event_id << " of " << workflow;
        const HistoryEvent& event = it->second.events(static_cast<int>(event_id - 1));
        EXPECT_EQ(event.event_id(), event_id) << cluster->name << " " << workflow;
        EXPECT_EQ(event.version(), version) << cluster->name << " " << workflow << " event "
                                            << event_id << " was acknowledged at another version";
      }
    }
  }

  // Runs `xdcctl namespace history orders` on `cluster` and returns its rows.
  std::vector<HistoryRow> HistoryTable(const Cluster& cluster) {
    CommandResult history = Xdcctl(cluster, "namespace history orders");
    EXPECT_EQ(history.exit_code, 0) << history.output;
    return ParseHistoryTable(history.output);
  }
};

// A graceful handover while a client keeps writing: the client is refused (retryably) for a
// moment, follows the namespace to west, and every write it was told succeeded is on both
// clusters at the version it was acknowledged with; nothing forks.
TEST_F(FailoverE2eTest, HandoverUnderLoadLosesNoAcknowledgedWrite) {
  Load load(AddressOf(), LedgerClient::TransportErrors::kFail);
  ASSERT_TRUE(load.AwaitAcks(kAcksPerPhase, 1));

  const CommandResult handover =
      Xdcctl(*east_, "namespace failover orders --to west --timeout 30s");
  ASSERT_EQ(handover.exit_code, 0) << handover.output;
  EXPECT_THAT(handover.output,
              HasSubstr("handover complete: orders is active on west at failover version 2; "
                        "writes were refused for "));

  // The load follows the namespace to west and keeps writing there.
  ASSERT_TRUE(load.AwaitAcks(kAcksPerPhase, 2)) << "the load did not follow to west";
  load.Stop();
  EXPECT_THAT(load.ledger().errors_, IsEmpty());
  EXPECT_THAT(load.versions(), ElementsAre(1, 2));

  ASSERT_NO_FATAL_FAILURE(AwaitConvergence());
  ASSERT_NO_FATAL_FAILURE(ExpectEveryAckOnBothAndNoForks(load.ledger()));

  // Both clusters report one graceful handover that lost nothing.
  for (Cluster* cluster : {east_.get(), west_.get()}) {
    SCOPED_TRACE(cluster->name);
    const std::vector<HistoryRow> rows = HistoryTable(*cluster);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].kind, "graceful");
    EXPECT_EQ(rows[0].from_to, "east->west");
    EXPECT_EQ(rows[0].versions, "1->2");
    EXPECT_GT(rows[0].refused_seconds, 0);
    EXPECT_EQ(rows[0].forked, 0);
    EXPECT_EQ(rows[0].lost, 0);
    EXPECT_EQ(rows[0].reapplied, 0);
    EXPECT_EQ(rows[0].dropped, 0);
  }
  std::fprintf(stderr, "failover e2e: %zu acknowledged events, %d writes refused as retryable\n",
               load.ledger().acked_.size(), load.ledger().refused_retryable_.load());
}

// A partition (Kafka stopped), a forced failover to west, and both sides writing to the same
// workflows: east does not know it lost the namespace. After the heal, both clusters converge on
// west's branches, each signal east accepted is reapplied exactly once, and the damage reported
// for the failover is exactly what east wrote after the fork.
TEST_F(FailoverE2eTest, ForcedFailoverDuringPartitionHealsAndReportsTheDamage) {
  constexpr int kWorkflows = 8;
  auto workflow_id = [](int i) { return absl::StrCat("wf-", i); };
  auto east_signals = [](int i) { return 1 + i % 2; };  // signals east accepts on workflow i
  auto east_input = [&](int i, int j) {
    return absl::StrCat("east signal ", j, " for ", workflow_id(i));
  };

  HttpClient east(east_->endpoint.address());
  HttpClient west(west_->endpoint.address());
  std::vector<std::string> runs(kWorkflows);
  for (int i = 0; i < kWorkflows; ++i) {
    AppendRequest start = Append(
        kNs, workflow_id(i), 1,
        {Event(WORKFLOW_EXECUTION_STARTED, "input"), Event(ACTIVITY_TASK_SCHEDULED, "activity")});
    AppendResponse started;
    ASSERT_OK(east.Call("POST", "/v1/append", &start, started));
    runs[i] = started.run_id();
  }
  for (int i = 0; i < kWorkflows; ++i) {
    ASSERT_TRUE(WaitFor(
        [&] {
          absl::StatusOr<GetHistoryResponse> h = History(*west_, workflow_id(i));
          return h.ok() && h->next_event_id() == 3;
        },
        kConvergeTimeout))
        << "west did not receive " << workflow_id(i);
  }

  // The partition: Kafka stops; both daemons keep running and serving.
  ASSERT_OK(kafka_->Kill(SIGSTOP));
  struct ContinueKafka {
    chaos::ChildProcess* kafka;
    ~ContinueKafka() { kafka->Kill(SIGCONT).IgnoreError(); }
  } continue_kafka{kafka_.get()};

  const CommandResult forced = Xdcctl(*west_, "namespace failover orders --to west --force");
  ASSERT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_THAT(forced.output,
              HasSubstr("active=west failover_version=2 state=NAMESPACE_STATE_ACTIVE"));

  // East still believes it is active at version 1 and accepts signals and an activity result;
  // west, active at version 2, writes a signal and a timer to the same workflows.
  absl::StatusOr<NamespaceRecord> on_east = Record(*east_);
  ASSERT_TRUE(on_east.ok()) << on_east.status();
  EXPECT_EQ(on_east->active_cluster(), "east");
  int64_t east_events_after_fork = 0;
  int64_t east_signals_total = 0;
  for (int i = 0; i < kWorkflows; ++i) {
    for (int j = 0; j < east_signals(i); ++j) {
      SignalRequest signal;
      signal.set_namespace_(kNs);
      signal.set_workflow_id(workflow_id(i));
      signal.set_signal_name("poke");
      signal.set_input(east_input(i, j));
      AppendResponse ack;
      ASSERT_OK(east.Call("POST", "/v1/signal", &signal, ack));
      ASSERT_EQ(ack.first_event_id(), 3 + j);
      ASSERT_EQ(ack.version(), 1);
      ++east_events_after_fork;
      ++east_signals_total;
    }
    AppendRequest completed = Append(kNs, workflow_id(i), 3 + east_signals(i),
                                     {Event(ACTIVITY_TASK_COMPLETED, "result")}, runs[i]);
    AppendResponse ack;
    ASSERT_OK(east.Call("POST", "/v1/append", &completed, ack));
    ASSERT_EQ(ack.version(), 1);
    ++east_events_after_fork;

    SignalRequest signal;
    signal.set_namespace_(kNs);
    signal.set_workflow_id(workflow_id(i));
    signal.set_signal_name("poke");
    signal.set_input(absl::StrCat("west signal for ", workflow_id(i)));
    ASSERT_OK(west.Call("POST", "/v1/signal", &signal, ack));
    ASSERT_EQ(ack.first_event_id(), 3);
    ASSERT_EQ(ack.version(), 2);
    AppendRequest timer = Append(kNs, workflow_id(i), 4, {Event(TIMER_STARTED, "timer")}, runs[i]);
    ASSERT_OK(west.Call("POST", "/v1/append", &timer, ack));
    ASSERT_EQ(ack.version(), 2);
  }

  // Heal, and wait until every workflow has the same branches and digest on both clusters with
  // east's signals reapplied (5 + its signals events on the current branch).
  const absl::Time healed = absl::Now();
  ASSERT_OK(kafka_->Kill(SIGCONT));
  std::vector<GetHistoryResponse> east_histories(kWorkflows), west_histories(kWorkflows);
  for (int i = 0; i < kWorkflows; ++i) {
    absl::StatusOr<GetHistoryResponse> e, w;
    const bool converged = WaitFor(
        [&] {
          e = History(*east_, workflow_id(i));
          w = History(*west_, workflow_id(i));
          return e.ok() && w.ok() && e->next_event_id() == 5 + east_signals(i) &&
                 w->next_event_id() == 5 + east_signals(i) &&
                 BranchesOf(e->version_histories()) == BranchesOf(w->version_histories()) &&
                 e->digest() == w->digest();
        },
        kConvergeTimeout);
    ASSERT_TRUE(converged) << workflow_id(i) << " did not converge. east: "
                           << (e.ok() ? EventSummary(*e) + e->version_histories().ShortDebugString()
                                      : e.status().ToString())
                           << "\nwest: "
                           << (w.ok() ? EventSummary(*w) + w->version_histories().ShortDebugString()
                                      : w.status().ToString());
    east_histories[i] = *std::move(e);
    west_histories[i] = *std::move(w);
  }
  const absl::Duration convergence = absl::Now() - healed;

  for (int i = 0; i < kWorkflows; ++i) {
    const int64_t s = east_signals(i);
    for (const GetHistoryResponse* history : {&east_histories[i], &west_histories[i]}) {
      SCOPED_TRACE(absl::StrCat(workflow_id(i), " on ",
                                history == &east_histories[i] ? "east" : "west", ": ",
                                EventSummary(*history)));
      // East's branch (all version 1) lost to west's; west's carries east's signals.
      const Branches expected{.all = {{{2, 1}, {4 + s, 2}}, {{3 + s, 1}}},
                              .current = {{2, 1}, {4 + s, 2}}};
      EXPECT_EQ(BranchesOf(history->version_histories()), expected);
      ASSERT_EQ(history->events_size(), 4 + s);
      EXPECT_EQ(history->events(2).event_type(), WORKFLOW_EXECUTION_SIGNALED);
      EXPECT_FALSE(history->events(2).has_reapplied_from());
      EXPECT_EQ(history->events(3).event_type(), TIMER_STARTED);
      // Each of east's signals exactly once, as a copy at version 2 naming its origin; east's
      // ACTIVITY_TASK_COMPLETED is not reapplied.
      std::multiset<std::string> reapplied;
      for (int e = 4; e < history->events_size(); ++e) {
        const HistoryEvent& event = history->events(e);
        EXPECT_EQ(event.event_type(), WORKFLOW_EXECUTION_SIGNALED) << "event " << e + 1;
        EXPECT_EQ(event.version(), 2) << "event " << e + 1;
        ASSERT_TRUE(event.has_reapplied_from()) << "event " << e + 1;
        EXPECT_EQ(event.reapplied_from().run_id(), runs[i]);
        EXPECT_EQ(event.reapplied_from().version(), 1);
        SignalAttributes attributes;
        ASSERT_TRUE(attributes.ParseFromString(event.attributes()));
        reapplied.insert(attributes.input());
        EXPECT_EQ(attributes.input(), east_input(i, event.reapplied_from().event_id() - 3))
            << "event " << e + 1 << " copies east's event " << event.reapplied_from().event_id();
      }
      std::multiset<std::string> expected_inputs;
      for (int j = 0; j < s; ++j) expected_inputs.insert(east_input(i, j));
      EXPECT_EQ(reapplied, expected_inputs);
      // The same events on both (the order in which each lists its branches is its own).
      for (int e = 0; e < history->events_size(); ++e) {
        std::string difference;
        google::protobuf::util::MessageDifferencer differencer;
        differencer.ReportDifferencesToString(&difference);
        EXPECT_TRUE(differencer.Compare(history->events(e), west_histories[i].events(e)))
            << "event " << e + 1 << ": " << difference;
      }
    }
  }

  // East learned of the failover and now refuses writes, naming west (API and xdcctl).
  const NamespaceRecord agreed = AwaitAgreedRecord();
  EXPECT_EQ(agreed.active_cluster(), "west");
  EXPECT_EQ(agreed.failover_version(), 2);
  const ApiError refused = TryAppend(*east_, "late");
  EXPECT_EQ(refused.http_status, 409) << refused.body;
  EXPECT_EQ(refused.error.active_cluster(), "west") << refused.body;
  EXPECT_FALSE(refused.error.retryable()) << refused.body;
  const CommandResult late =
      Xdcctl(*east_, "signal --namespace orders --workflow-id wf-0 --name late");
  EXPECT_EQ(late.exit_code, 1) << late.output;
  EXPECT_THAT(late.output, HasSubstr("the namespace is active on cluster 'west'"));

  // The damage, as describe computes it from each cluster's store, is what east wrote after the
  // fork; `xdcctl namespace history` shows the same numbers.
  for (Cluster* cluster : {east_.get(), west_.get()}) {
    SCOPED_TRACE(cluster->name);
    absl::StatusOr<DescribeNamespaceResponse> described = Describe(*cluster);
    ASSERT_TRUE(described.ok()) << described.status();
    ASSERT_EQ(described->namespace_().failover_history_size(), 1) << described->ShortDebugString();
    const FailoverEvent& event = described->namespace_().failover_history(0);
    EXPECT_EQ(event.kind(), FAILOVER_KIND_FORCED);
    EXPECT_EQ(event.from_cluster(), "east");
    EXPECT_EQ(event.to_cluster(), "west");
    EXPECT_EQ(event.from_version(), 1);
    EXPECT_EQ(event.failover_version(), 2);
    ASSERT_EQ(described->damage_size(), 1);
    const FailoverDamage& damage = described->damage(0);
    EXPECT_EQ(damage.workflows_forked(), kWorkflows);
    EXPECT_EQ(damage.events_on_losing_branches(), east_events_after_fork);
    EXPECT_EQ(damage.events_reapplied(), east_signals_total);
    EXPECT_EQ(damage.reapplicable_not_reapplied(), 0);

    const std::vector<HistoryRow> rows = HistoryTable(*cluster);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].kind, "forced");
    EXPECT_EQ(rows[0].from_to, "east->west");
    EXPECT_EQ(rows[0].versions, "1->2");
    EXPECT_EQ(rows[0].forked, kWorkflows);
    EXPECT_EQ(rows[0].lost, east_events_after_fork);
    EXPECT_EQ(rows[0].reapplied, east_signals_total);
    EXPECT_EQ(rows[0].dropped, 0);

    HttpClient client(cluster->endpoint.address());
    const StatusResponse status = GetStatus(client);
    EXPECT_EQ(status.parked_tasks(), 0) << status.ShortDebugString();
    EXPECT_THAT(status.halted_appliers(), IsEmpty());
  }
  std::fprintf(stderr,
               "failover e2e: %lld events east wrote after the fork (%lld signals), converged %s "
               "after the heal\n",
               static_cast<long long>(east_events_after_fork),
               static_cast<long long>(east_signals_total),
               absl::FormatDuration(absl::Trunc(convergence, absl::Milliseconds(1))).c_str());
}

// East -> west -> east, gracefully, under a load that follows the namespace: versions go 1, 2,
// 101 (increment 100; east owns 1 mod 100), nothing forks, nothing acknowledged is lost.
TEST_F(FailoverE2eTest, FailbackEastWestEastUnderLoad) {
  ASSERT_EQ(kFailoverVersionIncrement, 100);
  Load load(AddressOf(), LedgerClient::TransportErrors::kFail);
  ASSERT_TRUE(load.AwaitAcks(kAcksPerPhase, 1));

  const CommandResult to_west = Xdcctl(*east_, "namespace failover orders --to west --timeout 30s");
  ASSERT_EQ(to_west.exit_code, 0) << to_west.output;
  EXPECT_THAT(to_west.output,
              HasSubstr("handover complete: orders is active on west at failover version 2"));
  ASSERT_TRUE(load.AwaitAcks(kAcksPerPhase, 2)) << "the load did not follow to west";

  // Failback: the graceful handover goes to the active cluster, now west. While xdcctl waits
  // for the decision, watch the target (east) so a handover that cannot complete says why.
  std::future<CommandResult> to_east = std::async(std::launch::async, [&] {
    return Xdcctl(*west_, "namespace failover orders --to east --timeout 15s");
  });
  std::string east_waits_for;
  const bool east_activated = WaitFor(
      [&] {
        absl::StatusOr<NamespaceRecord> on_east = Record(*east_);
        if (on_east.ok() && on_east->active_cluster() == "east") return true;
        absl::StatusOr<DescribeNamespaceResponse> described = Describe(*east_);
        if (described.ok() && described->handover_target().proposed_version() >
                                  described->handover_target().decided_version()) {
          east_waits_for = absl::StrJoin(described->waiting_for(), "; ");  // still pending
        }
        return false;
      },
      absl::Seconds(15));
  EXPECT_TRUE(east_activated) << "east, the target of the failback, never activated; it was "
                                 "waiting for: "
                              << east_waits_for;
  const CommandResult failback = to_east.get();
  ASSERT_EQ(failback.exit_code, 0) << failback.output;
  EXPECT_THAT(failback.output,
              HasSubstr("handover complete: orders is active on east at failover version 101"));
  ASSERT_TRUE(load.AwaitAcks(kAcksPerPhase, 101)) << "the load did not follow back to east";
  load.Stop();
  EXPECT_THAT(load.ledger().errors_, IsEmpty());
  EXPECT_THAT(load.versions(), ElementsAre(1, 2, 101));

  const NamespaceRecord agreed = AwaitAgreedRecord();
  EXPECT_EQ(agreed.active_cluster(), "east");
  EXPECT_EQ(agreed.failover_version(), 101);
  ASSERT_NO_FATAL_FAILURE(AwaitConvergence());
  ASSERT_NO_FATAL_FAILURE(ExpectEveryAckOnBothAndNoForks(load.ledger()));

  for (Cluster* cluster : {east_.get(), west_.get()}) {
    SCOPED_TRACE(cluster->name);
    const std::vector<HistoryRow> rows = HistoryTable(*cluster);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].kind, "graceful");
    EXPECT_EQ(rows[0].from_to, "east->west");
    EXPECT_EQ(rows[0].versions, "1->2");
    EXPECT_EQ(rows[1].kind, "graceful");
    EXPECT_EQ(rows[1].from_to, "west->east");
    EXPECT_EQ(rows[1].versions, "2->101");
    for (const HistoryRow& row : rows) {
      EXPECT_GT(row.refused_seconds, 0);
      EXPECT_EQ(row.forked, 0);
      EXPECT_EQ(row.lost, 0);
    }
  }
}

// The target of a handover is SIGKILLed. While it is down the source stays in HANDOVER, refusing
// writes retryably, and xdcctl says the outcome is unknown (it guesses nothing), even after an
// operator's cancel. Once west restarts, exactly one outcome results: either west activated at
// the proposed version and east follows, or west cancelled and east is active again at its own
// version. Either way nothing acknowledged is lost and nothing forks.
TEST_F(FailoverE2eTest, HandoverWhoseTargetIsKilledResolvesAfterRestart) {
  Load load(AddressOf(), LedgerClient::TransportErrors::kRetry);
  ASSERT_TRUE(load.AwaitAcks(kAcksPerPhase, 1));

  ASSERT_NO_FATAL_FAILURE(CrashCluster(*west_));
  const CommandResult started = Xdcctl(*east_, "namespace failover orders --to west --no-wait");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  EXPECT_THAT(started.output,
              HasSubstr("active=east failover_version=1 state=NAMESPACE_STATE_HANDOVER"));
  absl::StatusOr<NamespaceRecord> handing_over = Record(*east_);
  ASSERT_TRUE(handing_over.ok()) << handing_over.status();
  ASSERT_EQ(handing_over->state(), NAMESPACE_STATE_HANDOVER);
  const int64_t proposed = handing_over->handover().proposed_version();
  EXPECT_EQ(proposed, 2);

  // Once the load has been refused, nothing more can be acknowledged until the outcome is known.
  ASSERT_TRUE(WaitFor([&] { return load.ledger().refused_retryable_.load() > 0; }, kLoadTimeout));
  const size_t acked_before_outcome = load.ledger().acked_count();

  const CommandResult cancel = Xdcctl(*east_, "namespace cancel orders --reason 'west is down'");
  EXPECT_EQ(cancel.exit_code, 1) << cancel.output;
  EXPECT_THAT(cancel.output, HasSubstr("the outcome of the handover of orders is not known yet"));
  EXPECT_THAT(cancel.output, HasSubstr("a cancel was requested"));
  EXPECT_THAT(cancel.output, HasSubstr("nothing was guessed"));

  const ApiError refused = TryAppend(*east_, "during-handover");
  EXPECT_EQ(refused.http_status, 503) << refused.body;
  EXPECT_TRUE(refused.error.retryable()) << refused.body;
  EXPECT_GT(refused.error.retry_after_ms(), 0) << refused.body;
  const CommandResult describe = Xdcctl(*east_, "namespace describe orders");
  EXPECT_EQ(describe.exit_code, 0) << describe.output;
  EXPECT_THAT(describe.output, HasSubstr("state=NAMESPACE_STATE_HANDOVER"));
  EXPECT_THAT(describe.output, HasSubstr("waiting for: 'west' to decide the handover"));
  EXPECT_THAT(describe.output, HasSubstr("a cancel was requested"));
  absl::StatusOr<NamespaceRecord> still = Record(*east_);
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->state(), NAMESPACE_STATE_HANDOVER);
  EXPECT_TRUE(still->handover().cancel_requested());
  EXPECT_EQ(load.ledger().acked_count(), acked_before_outcome)
      << "a write was acknowledged while the handover's outcome was unknown";

  ASSERT_NO_FATAL_FAILURE(StartCluster(*west_));
  const NamespaceRecord outcome = AwaitAgreedRecord();
  ASSERT_FALSE(outcome.active_cluster().empty());
  absl::StatusOr<DescribeNamespaceResponse> on_west = Describe(*west_);
  ASSERT_TRUE(on_west.ok()) << on_west.status();
  std::map<HandoverOutcome, int> decisions;
  for (const HandoverDecision& decision : on_west->handover_target().decisions()) {
    EXPECT_EQ(decision.proposed_version(), proposed);
    ++decisions[decision.outcome()];
  }
  ASSERT_EQ(outcome.failover_history_size(), 1) << outcome.ShortDebugString();
  const FailoverEvent& event = outcome.failover_history(0);
  EXPECT_EQ(event.from_cluster(), "east");
  EXPECT_EQ(event.to_cluster(), "west");
  EXPECT_EQ(event.failover_version(), proposed);
  if (outcome.active_cluster() == "west") {
    // West activated before the cancel reached it; the cancel got the same answer.
    EXPECT_EQ(outcome.failover_version(), proposed);
    EXPECT_EQ(event.kind(), FAILOVER_KIND_GRACEFUL);
    EXPECT_THAT(decisions, ElementsAre(Pair(HANDOVER_OUTCOME_ACTIVATED, 1)));
  } else {
    // West cancelled: east is active again at its own version; west never wrote at `proposed`.
    EXPECT_EQ(outcome.active_cluster(), "east");
    EXPECT_EQ(outcome.failover_version(), 1);
    EXPECT_EQ(event.kind(), FAILOVER_KIND_HANDOVER_CANCELLED);
    EXPECT_EQ(event.reason(), "west is down");
    EXPECT_THAT(decisions, ElementsAre(Pair(HANDOVER_OUTCOME_CANCELLED, 1)));
  }
  // The load resumes on the active cluster.
  const bool resumed = outcome.active_cluster() == "west"
                           ? load.AwaitAcks(kAcksPerPhase / 2, proposed)
                           : load.AwaitAcks(acked_before_outcome + kAcksPerPhase / 2);
  ASSERT_TRUE(resumed) << "the load did not resume on " << outcome.active_cluster();
  load.Stop();
  EXPECT_THAT(load.ledger().errors_, IsEmpty());
  if (outcome.active_cluster() == "west") {
    EXPECT_THAT(load.versions(), ElementsAre(1, proposed));
  } else {
    EXPECT_THAT(load.versions(), ElementsAre(1));
  }
  ASSERT_NO_FATAL_FAILURE(AwaitConvergence());
  ASSERT_NO_FATAL_FAILURE(ExpectEveryAckOnBothAndNoForks(load.ledger()));
  std::fprintf(stderr, "failover e2e: outcome after west's restart: %s at failover version %lld\n",
               outcome.active_cluster() == "west" ? "west activated" : "cancelled",
               static_cast<long long>(outcome.failover_version()));
}

// The source is SIGKILLed while in HANDOVER (west is frozen, so it cannot decide first). East
// restarts still in HANDOVER, refusing writes: the state is durable. A retried request attaches to
// the same proposal. Once west runs again the handover completes, and the writes-refused time
// covers the crash.
TEST_F(FailoverE2eTest, HandoverWhoseSourceIsKilledResumesInHandoverAndCompletes) {
  Load load(AddressOf(), LedgerClient::TransportErrors::kRetry);
  ASSERT_TRUE(load.AwaitAcks(kAcksPerPhase, 1));

  ASSERT_OK(west_->process->Kill(SIGSTOP));
  struct ContinueWest {
    chaos::ChildProcess* west;
    ~ContinueWest() { west->Kill(SIGCONT).IgnoreError(); }
  } continue_west{west_->process.get()};

  const CommandResult started =
      Xdcctl(*east_, "namespace failover orders --to west --timeout 60s --no-wait");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  EXPECT_THAT(started.output, HasSubstr("state=NAMESPACE_STATE_HANDOVER"));
  absl::StatusOr<NamespaceRecord> before_crash = Record(*east_);
  ASSERT_TRUE(before_crash.ok()) << before_crash.status();
  ASSERT_EQ(before_crash->state(), NAMESPACE_STATE_HANDOVER);
  ASSERT_TRUE(WaitFor([&] { return load.ledger().refused_retryable_.load() > 0; }, kLoadTimeout));
  const size_t acked_before_outcome = load.ledger().acked_count();

  const absl::Time crashed = absl::Now();
  ASSERT_NO_FATAL_FAILURE(CrashCluster(*east_));
  ASSERT_NO_FATAL_FAILURE(StartCluster(*east_));
  const absl::Duration down = absl::Now() - crashed;

  // Back in HANDOVER with the same proposal, refusing writes retryably.
  absl::StatusOr<NamespaceRecord> after_restart = Record(*east_);
  ASSERT_TRUE(after_restart.ok()) << after_restart.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*after_restart, *before_crash))
      << "before: " << before_crash->ShortDebugString()
      << "\nafter: " << after_restart->ShortDebugString();
  const ApiError refused = TryAppend(*east_, "during-handover");
  EXPECT_EQ(refused.http_status, 503) << refused.body;
  EXPECT_TRUE(refused.error.retryable()) << refused.body;
  const CommandResult describe = Xdcctl(*east_, "namespace describe orders");
  EXPECT_EQ(describe.exit_code, 0) << describe.output;
  EXPECT_THAT(describe.output, HasSubstr("state=NAMESPACE_STATE_HANDOVER"));
  EXPECT_THAT(describe.output,
              HasSubstr(absl::StrCat("waiting for: 'west' to decide the handover (proposed "
                                     "failover version ",
                                     before_crash->handover().proposed_version(), ")")));
  // An operator re-running the command attaches to the handover in progress.
  const CommandResult again =
      Xdcctl(*east_, "namespace failover orders --to west --timeout 60s --no-wait");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  absl::StatusOr<NamespaceRecord> after_retry = Record(*east_);
  ASSERT_TRUE(after_retry.ok()) << after_retry.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*after_retry, *before_crash))
      << after_retry->ShortDebugString();
  EXPECT_EQ(load.ledger().acked_count(), acked_before_outcome)
      << "a write was acknowledged while the handover's outcome was unknown";

  // West runs again, collects the markers and activates; east follows.
  ASSERT_OK(west_->process->Kill(SIGCONT));
  const NamespaceRecord outcome = AwaitAgreedRecord();
  EXPECT_EQ(outcome.active_cluster(), "west");
  EXPECT_EQ(outcome.failover_version(), before_crash->handover().proposed_version());
  ASSERT_EQ(outcome.failover_history_size(), 1) << outcome.ShortDebugString();
  EXPECT_EQ(outcome.failover_history(0).kind(), FAILOVER_KIND_GRACEFUL);
  EXPECT_GE(outcome.failover_history(0).writes_refused_micros(), absl::ToInt64Microseconds(down))
      << "the writes-refused time does not cover the source's crash";

  ASSERT_TRUE(load.AwaitAcks(kAcksPerPhase, outcome.failover_version()))
      << "the load did not follow to west";
  load.Stop();
  EXPECT_THAT(load.ledger().errors_, IsEmpty());
  EXPECT_GT(load.ledger().unavailable_.load(), 0) << "the load never saw east's crash";
  EXPECT_THAT(load.versions(), ElementsAre(1, outcome.failover_version()));
  ASSERT_NO_FATAL_FAILURE(AwaitConvergence());
  ASSERT_NO_FATAL_FAILURE(ExpectEveryAckOnBothAndNoForks(load.ledger()));
  const std::vector<HistoryRow> rows = HistoryTable(*east_);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].kind, "graceful");
  EXPECT_EQ(rows[0].lost, 0);
}

// ---------------------------------------------------------------------------------------------
// Clean shutdown: SIGTERM drains, and a restart resumes exactly where the process stopped
// ---------------------------------------------------------------------------------------------

// The counter `metric` on `cluster`'s /metrics (summed over its labels).
double Metric(const Cluster& cluster, const std::string& metric) {
  HttpClient client(cluster.endpoint.address());
  absl::StatusOr<HttpResult> metrics = client.Request("GET", "/metrics");
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  return metrics.ok() ? MetricSum(metrics->body, metric) : -1;
}

// SIGTERM on the standby while it applies a steady stream: it finishes the batch it is applying
// (each batch commits its events and its Kafka offsets together), exits 0, and after a restart
// consumes from exactly where it stopped: not one event is applied twice, and every acknowledged
// write arrives.
TEST_F(FailoverE2eTest, SigtermOnTheStandbyMidStreamResumesWithNothingAppliedTwice) {
  Load load(AddressOf(), LedgerClient::TransportErrors::kFail);
  ASSERT_TRUE(load.AwaitAcks(kAcksPerPhase));
  ASSERT_TRUE(
      WaitFor([&] { return Metric(*west_, "xdc_events_applied_total") > 0; }, kLoadTimeout));

  absl::StatusOr<chaos::ExitStatus> stopped = west_->process->Terminate(kStopGrace);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->exited_cleanly()) << stopped->ToString();
  absl::StatusOr<std::string> log = west_->process->ReadLog();
  ASSERT_TRUE(log.ok());
  EXPECT_THAT(*log, HasSubstr("xdcd: cluster west stopping (Terminated)"));
  EXPECT_THAT(*log, HasSubstr("xdcd: cluster west stopped: in-flight applies finished"));

  ASSERT_TRUE(load.AwaitAcks(load.ledger().acked_count() + kAcksPerPhase));  // east goes on
  ASSERT_NO_FATAL_FAILURE(StartCluster(*west_));
  load.Stop();
  ASSERT_NO_FATAL_FAILURE(AwaitConvergence());
  ASSERT_NO_FATAL_FAILURE(ExpectEveryAckOnBothAndNoForks(load.ledger()));
  EXPECT_GT(Metric(*west_, "xdc_events_applied_total"), 0);
  EXPECT_EQ(Metric(*west_, "xdc_duplicate_events_dropped_total"), 0)
      << "the restarted standby re-read events it had applied before SIGTERM";
}

// SIGTERM on the active under load: appends the API acknowledged are all published and
// acknowledged by Kafka before the process exits (the log says nothing is left in the outbox),
// so the restarted process publishes nothing twice and the standby applies nothing twice.
TEST_F(FailoverE2eTest, SigtermOnTheActiveUnderLoadPublishesEverythingBeforeExiting) {
  Load load(AddressOf(), LedgerClient::TransportErrors::kRetry);
  ASSERT_TRUE(load.AwaitAcks(kAcksPerPhase));

  absl::StatusOr<chaos::ExitStatus> stopped = east_->process->Terminate(kStopGrace);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->exited_cleanly()) << stopped->ToString();
  load.Stop();
  absl::StatusOr<std::string> log = east_->process->ReadLog();
  ASSERT_TRUE(log.ok());
  EXPECT_THAT(*log, HasSubstr("0 left in the outbox for the next start"));

  ASSERT_NO_FATAL_FAILURE(StartCluster(*east_));
  ASSERT_NO_FATAL_FAILURE(AwaitConvergence());
  ASSERT_NO_FATAL_FAILURE(ExpectEveryAckOnBothAndNoForks(load.ledger()));
  EXPECT_EQ(Metric(*east_, "xdc_tasks_published_total"), 0)
      << "the restarted active published again what it had published before SIGTERM";
  EXPECT_EQ(Metric(*west_, "xdc_duplicate_events_dropped_total"), 0);
}

}  // namespace
}  // namespace xdc
