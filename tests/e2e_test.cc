// End-to-end tests with real processes: one xdc-kafka-mock (its own process, so Kafka outlives
// the daemons), xdcd "east" (active for namespace e2e) and xdcd "west" (standby), driven over
// HTTP by writer threads while a cluster is SIGKILLed and restarted on the same data_dir. The
// processes are started by the fixture in tests/process_clusters.h.
//
// Every wait is on a condition with a deadline (a log line, a counter, converged digests).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"
#include "tests/process_clusters.h"

namespace xdc {
namespace {

using chaos::ChildProcess;

constexpr char kNamespace[] = "e2e";
constexpr int kWorkflows = 400;
constexpr int kWriterThreads = 4;
constexpr int64_t kEventsPerWorkflow = 5;
constexpr int64_t kCompletedNextEventId = kEventsPerWorkflow + 1;

constexpr absl::Duration kWriteTimeout = absl::Seconds(90);      // the whole writer phase
constexpr absl::Duration kConvergeTimeout = absl::Seconds(120);  // digests equal
constexpr absl::Duration kCounterTimeout = absl::Seconds(10);    // status counters caught up

std::string WorkflowId(int index) { return absl::StrFormat("wf-%03d", index); }

// ---------------------------------------------------------------------------------------------
// Shared state between the test thread and the writers
// ---------------------------------------------------------------------------------------------

// How many workflows the writers have finished (successfully or not).
class Progress {
 public:
  void Done() {
    absl::MutexLock lock(&mu_);
    ++done_;
  }
  int done() const {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  // True once at least `n` workflows are done; false after `timeout`.
  bool AwaitAtLeast(int n, absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

 private:
  mutable absl::Mutex mu_;
  int done_ ABSL_GUARDED_BY(mu_) = 0;
};

// A write that got a 2xx answer: events [first_event_id, first_event_id + types.size()).
struct Ack {
  int workflow = 0;
  std::string run_id;
  int64_t first_event_id = 0;
  std::vector<EventType> types;
};

// What one writer thread saw. Owned by that thread until it is joined.
struct WriterReport {
  std::vector<Ack> acks;
  int unknown_outcomes = 0;         // calls whose outcome was unknown (connection lost)
  std::vector<std::string> errors;  // anything unexpected; the test fails on any
};

// ---------------------------------------------------------------------------------------------
// The scripted workflow: started + scheduled (1-2), a signal (3), completed + completed (4-5)
// ---------------------------------------------------------------------------------------------

std::vector<EventType> StepTypes(int64_t next_event_id) {
  switch (next_event_id) {
    case 1:
      return {WORKFLOW_EXECUTION_STARTED, ACTIVITY_TASK_SCHEDULED};
    case 3:
      return {WORKFLOW_EXECUTION_SIGNALED};
    case 4:
      return {ACTIVITY_TASK_COMPLETED, WORKFLOW_EXECUTION_COMPLETED};
    default:
      return {};
  }
}

std::vector<EventType> ScriptTypes() {
  std::vector<EventType> all;
  for (int64_t next : {1, 3, 4}) {
    for (EventType type : StepTypes(next)) all.push_back(type);
  }
  return all;
}

// Performs the step that starts at `next_event_id` for workflow `index` (run `run_id`, empty
// for a new run) and checks the answer covers exactly that step's events.
absl::StatusOr<AppendResponse> DoStep(HttpClient& client, int index, const std::string& run_id,
                                      int64_t next_event_id) {
  const std::vector<EventType> types = StepTypes(next_event_id);
  if (types.empty()) {
    return absl::InternalError(absl::StrCat("workflow ", WorkflowId(index), " has next_event_id ",
                                            next_event_id,
                                            ", which is not a step boundary of the script"));
  }
  AppendResponse response;
  absl::Status status;
  if (types.front() == WORKFLOW_EXECUTION_SIGNALED) {
    SignalRequest request;
    request.set_namespace_(kNamespace);
    request.set_workflow_id(WorkflowId(index));
    request.set_run_id(run_id);
    request.set_signal_name("poke");
    request.set_input(absl::StrCat("signal for ", WorkflowId(index)));
    status = client.Call("POST", "/v1/signal", &request, response);
  } else {
    AppendRequest request;
    request.set_namespace_(kNamespace);
    request.set_workflow_id(WorkflowId(index));
    request.set_run_id(run_id);
    request.set_expected_next_event_id(next_event_id);
    for (size_t i = 0; i < types.size(); ++i) {
      NewEvent* event = request.add_events();
      event->set_event_type(types[i]);
      event->set_attributes(absl::StrCat(WorkflowId(index), "/", next_event_id + i));
    }
    status = client.Call("POST", "/v1/append", &request, response);
  }
  if (!status.ok()) return status;
  const int64_t expected_next = next_event_id + static_cast<int64_t>(types.size());
  if (response.first_event_id() != next_event_id || response.next_event_id() != expected_next ||
      response.run_id().empty() || (!run_id.empty() && response.run_id() != run_id)) {
    return absl::InternalError(absl::StrCat("workflow ", WorkflowId(index), ": step at ",
                                            next_event_id, " answered ",
                                            response.ShortDebugString()));
  }
  return response;
}

std::string HistoryTarget(int index, const std::string& run_id) {
  std::string target =
      absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=", WorkflowId(index));
  if (!run_id.empty()) absl::StrAppend(&target, "&run_id=", run_id);
  return target;
}

// Writes workflows thread_index, thread_index + kWriterThreads, ... to the cluster at
// `endpoint`. A call that fails with UNAVAILABLE (connection lost or refused: the cluster may
// or may not have applied it) is not acknowledged; the writer then waits for the cluster to
// answer again (a restart publishes a new address), re-reads the run to learn how far it got,
// and continues the script from there.
void RunWriter(const Endpoint& endpoint, int thread_index, absl::Time deadline, Progress& progress,
               WriterReport& report) {
  // Not a structured binding: lambdas below capture `generation`, which clang 14 refuses for
  // bindings (scripts/check-thread-safety.sh compiles every test with it).
  auto first = endpoint.Get();
  auto generation = first.second;
  auto client = std::make_unique<HttpClient>(first.first);
  auto refresh_client = [&] {
    auto [current, current_generation] = endpoint.Get();
    if (current_generation != generation) {
      generation = current_generation;
      client = std::make_unique<HttpClient>(current);
    }
  };
  // Learns run id and next event id of workflow `index` from the cluster.
  auto resync = [&](int index, std::string& run_id, int64_t& next) -> absl::Status {
    for (;;) {
      refresh_client();
      GetHistoryResponse history;
      absl::Status s = client->Call("GET", HistoryTarget(index, run_id), nullptr, history);
      if (s.ok()) {
        run_id = history.workflow().run_id();
        next = history.next_event_id();
        return absl::OkStatus();
      }
      // No run yet: the first append was lost before it became durable.
      if (absl::IsNotFound(s) && run_id.empty()) {
        next = 1;
        return absl::OkStatus();
      }
      if (!absl::IsUnavailable(s)) return s;
      const absl::Time now = absl::Now();
      if (now >= deadline)
        return absl::DeadlineExceededError(absl::StrCat("resync: ", s.message()));
      endpoint.AwaitNewer(generation, std::min(absl::Seconds(1), deadline - now));
    }
  };

  for (int index = thread_index; index < kWorkflows; index += kWriterThreads) {
    std::string run_id;
    int64_t next = 1;
    while (next != kCompletedNextEventId) {
      if (absl::Now() >= deadline) {
        report.errors.push_back(absl::StrCat(WorkflowId(index), ": writer deadline passed"));
        break;
      }
      absl::StatusOr<AppendResponse> response = DoStep(*client, index, run_id, next);
      if (response.ok()) {
        report.acks.push_back(Ack{index, response->run_id(), next, StepTypes(next)});
        run_id = response->run_id();
        next = response->next_event_id();
        continue;
      }
      if (!absl::IsUnavailable(response.status())) {
        report.errors.push_back(
            absl::StrCat(WorkflowId(index), ": ", response.status().ToString()));
        break;
      }
      ++report.unknown_outcomes;
      if (absl::Status s = resync(index, run_id, next); !s.ok()) {
        report.errors.push_back(absl::StrCat(WorkflowId(index), ": ", s.ToString()));
        break;
      }
    }
    progress.Done();
  }
}

// ---------------------------------------------------------------------------------------------
// Reading a cluster
// ---------------------------------------------------------------------------------------------

using DigestKey = std::tuple<std::string, std::string, int64_t, std::string>;

absl::StatusOr<std::vector<DigestKey>> ReadDigests(const Endpoint& endpoint) {
  HttpClient client(endpoint.address());
  ListDigestsResponse response;
  if (absl::Status s =
          client.Call("GET", absl::StrCat("/v1/digests?namespace=", kNamespace), nullptr, response);
      !s.ok()) {
    return s;
  }
  std::vector<DigestKey> digests;
  for (const WorkflowDigest& d : response.workflows()) {
    digests.emplace_back(d.workflow_id(), d.run_id(), d.next_event_id(), d.digest());
  }
  std::sort(digests.begin(), digests.end());
  return digests;
}

absl::StatusOr<StatusResponse> ReadStatus(const Endpoint& endpoint) {
  HttpClient client(endpoint.address());
  StatusResponse status;
  if (absl::Status s = client.Call("GET", "/v1/status", nullptr, status); !s.ok()) return s;
  return status;
}

absl::StatusOr<GetHistoryResponse> ReadHistory(const Endpoint& endpoint, int index,
                                               const std::string& run_id) {
  HttpClient client(endpoint.address());
  GetHistoryResponse history;
  if (absl::Status s = client.Call("GET", HistoryTarget(index, run_id), nullptr, history);
      !s.ok()) {
    return s;
  }
  return history;
}

// Events applied from `peer`, summed over shards (persisted with the events themselves).
int64_t EventsAppliedFrom(const StatusResponse& status, const std::string& peer) {
  int64_t total = 0;
  for (const ShardStatus& shard : status.shards()) {
    for (const PeerShardStatus& p : shard.peers()) {
      if (p.peer() == peer) total += p.events_applied();
    }
  }
  return total;
}

int64_t TotalEvents(const std::vector<DigestKey>& digests) {
  int64_t total = 0;
  for (const DigestKey& d : digests) total += std::get<2>(d) - 1;
  return total;
}

// Describes the first difference between two sorted digest lists.
std::string DescribeDifference(const std::vector<DigestKey>& a, const std::vector<DigestKey>& b) {
  auto show = [](const DigestKey& d) {
    return absl::StrCat(std::get<0>(d), " run ", std::get<1>(d), " next ", std::get<2>(d),
                        " digest ", std::get<3>(d));
  };
  std::vector<DigestKey> only_a, only_b;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_a));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_b));
  return absl::StrCat(a.size(), " vs ", b.size(), " workflows; ", only_a.size(), " only in east",
                      only_a.empty() ? "" : " (first: " + show(only_a.front()) + ")", ", ",
                      only_b.size(), " only in west",
                      only_b.empty() ? "" : " (first: " + show(only_b.front()) + ")");
}

// ---------------------------------------------------------------------------------------------
// The fixture: Kafka mock + east + west (tests/process_clusters.h), namespace e2e active on east
// ---------------------------------------------------------------------------------------------

class E2eTest : public ProcessClustersTest {
 protected:
  E2eTest() : ProcessClustersTest(kNamespace) {}

  // Split brain: 1. east (active, version 1) starts workflows 0..count-1 and west receives them
  // all; 2. the Kafka process is stopped (both daemons keep running: replication is held back
  // both ways; the caller's ContinueKafka resumes it); 3. a forced failover makes west active at
  // version 2 while east still believes it is active at version 1. `runs`: their run ids.
  void SplitAfterStarting(HttpClient& east, HttpClient& west, int count,
                          std::vector<std::string>& runs) {
    runs.assign(count, "");
    for (int i = 0; i < count; ++i) {
      absl::StatusOr<AppendResponse> started = DoStep(east, i, "", 1);
      ASSERT_TRUE(started.ok()) << started.status();
      runs[i] = started->run_id();
    }
    const absl::Time deadline = absl::Now() + kConvergeTimeout;
    for (int i = 0; i < count; ++i) {
      for (;;) {
        absl::StatusOr<GetHistoryResponse> history = ReadHistory(west_->endpoint, i, runs[i]);
        if (history.ok() && history->next_event_id() == 3) break;
        ASSERT_LT(absl::Now(), deadline) << "west did not receive " << WorkflowId(i);
        absl::SleepFor(kPollInterval);
      }
    }
    ASSERT_OK(kafka_->Kill(SIGSTOP));
    FailoverRequest failover;
    failover.set_target_cluster("west");
    failover.set_force(true);
    NamespaceRecord record;
    ASSERT_OK(west.Call("POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"), &failover,
                        record));
    ASSERT_EQ(record.active_cluster(), "west");
    ASSERT_EQ(record.failover_version(), 2);
  }

  // Starts the writers against east; they run until every workflow is done.
  void StartWriters() {
    reports_.assign(kWriterThreads, WriterReport{});
    const absl::Time deadline = absl::Now() + kWriteTimeout;
    for (int t = 0; t < kWriterThreads; ++t) {
      writers_.emplace_back(RunWriter, std::cref(east_->endpoint), t, deadline, std::ref(progress_),
                            std::ref(reports_[t]));
    }
  }

  // Joins the writers; fails on any unexpected error. Returns their acknowledged writes.
  std::vector<Ack> JoinWriters(int* unknown_outcomes) {
    for (std::thread& writer : writers_) writer.join();
    writers_.clear();
    std::vector<Ack> acks;
    *unknown_outcomes = 0;
    for (const WriterReport& report : reports_) {
      for (const std::string& error : report.errors) ADD_FAILURE() << "writer: " << error;
      acks.insert(acks.end(), report.acks.begin(), report.acks.end());
      *unknown_outcomes += report.unknown_outcomes;
    }
    return acks;
  }

  // Waits until east holds kWorkflows completed workflows and west's digests equal east's.
  void AwaitConvergence(std::vector<DigestKey>* converged) {
    absl::StatusOr<std::vector<DigestKey>> east = ReadDigests(east_->endpoint);
    ASSERT_TRUE(east.ok()) << east.status();
    ASSERT_EQ(east->size(), static_cast<size_t>(kWorkflows));
    for (const DigestKey& d : *east) {
      ASSERT_EQ(std::get<2>(d), kCompletedNextEventId) << "east: " << std::get<0>(d);
    }
    const absl::Time deadline = absl::Now() + kConvergeTimeout;
    for (;;) {
      absl::StatusOr<std::vector<DigestKey>> west = ReadDigests(west_->endpoint);
      if (west.ok() && *west == *east) break;
      if (absl::Now() >= deadline) {
        absl::StatusOr<StatusResponse> status = ReadStatus(west_->endpoint);
        FAIL() << "west did not converge with east within " << kConvergeTimeout << ": "
               << (west.ok() ? DescribeDifference(*east, *west) : west.status().ToString())
               << "\nwest status: "
               << (status.ok() ? status->ShortDebugString() : status.status().ToString());
      }
      absl::SleepFor(kPollInterval);
    }
    // Converged digests must also be stable: re-reading east proves nothing was still moving.
    absl::StatusOr<std::vector<DigestKey>> east_again = ReadDigests(east_->endpoint);
    ASSERT_TRUE(east_again.ok()) << east_again.status();
    ASSERT_EQ(*east_again, *east);
    *converged = *std::move(east);
  }

  // West applied every event of east exactly once, and no applier parked or halted.
  void ExpectAppliedExactlyOnce(int64_t total_events) {
    // The counters are committed with the events; allow a moment for the status view to read
    // them after the digests converged, but never accept more than the total.
    const absl::Time deadline = absl::Now() + kCounterTimeout;
    absl::StatusOr<StatusResponse> status;
    for (;;) {
      status = ReadStatus(west_->endpoint);
      ASSERT_TRUE(status.ok()) << status.status();
      if (EventsAppliedFrom(*status, "east") >= total_events || absl::Now() >= deadline) break;
      absl::SleepFor(kPollInterval);
    }
    EXPECT_EQ(EventsAppliedFrom(*status, "east"), total_events)
        << "west's events_applied from east (more means a double apply): "
        << status->ShortDebugString();
    EXPECT_EQ(status->parked_tasks(), 0) << status->ShortDebugString();
    EXPECT_EQ(status->corrupt_messages(), 0) << status->ShortDebugString();
    EXPECT_TRUE(status->halted_appliers().empty()) << status->ShortDebugString();
  }

  Progress progress_;
  std::vector<WriterReport> reports_;
  std::vector<std::thread> writers_;
};

// Joins writer threads even when an assertion returns early, so no thread outlives the test.
class JoinOnExit {
 public:
  explicit JoinOnExit(std::vector<std::thread>& threads) : threads_(threads) {}
  ~JoinOnExit() {
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::vector<std::thread>& threads_;
};

TEST_F(E2eTest, StandbyKilledMidStreamConvergesWithoutDoubleApply) {
  const absl::Time start = absl::Now();
  StartWriters();
  JoinOnExit join(writers_);

  ASSERT_TRUE(progress_.AwaitAtLeast(kWorkflows / 3, kWriteTimeout));
  ASSERT_NO_FATAL_FAILURE(CrashCluster(*west_));
  const int done_at_kill = progress_.done();
  // Keep writing while west is down, then restart it on the same data_dir.
  ASSERT_TRUE(progress_.AwaitAtLeast(2 * kWorkflows / 3, kWriteTimeout));
  ASSERT_NO_FATAL_FAILURE(StartCluster(*west_));
  const int done_at_restart = progress_.done();

  int unknown_outcomes = 0;
  const std::vector<Ack> acks = JoinWriters(&unknown_outcomes);
  EXPECT_EQ(unknown_outcomes, 0) << "east was never down";
  EXPECT_EQ(acks.size(), static_cast<size_t>(3 * kWorkflows));
  EXPECT_LT(done_at_kill, kWorkflows) << "the writers finished before west was killed";
  const absl::Duration write_time = absl::Now() - start;

  std::vector<DigestKey> digests;
  ASSERT_NO_FATAL_FAILURE(AwaitConvergence(&digests));
  const int64_t total_events = TotalEvents(digests);
  ASSERT_EQ(total_events, kWorkflows * kEventsPerWorkflow);
  ExpectAppliedExactlyOnce(total_events);

  // A sample of full histories: same events (ids, versions, times, types, attributes) and the
  // same version histories on both sides.
  const std::vector<EventType> script = ScriptTypes();
  for (int index = 0; index < kWorkflows; index += 25) {
    const auto& [workflow_id, run_id, next, digest] = digests[index];
    absl::StatusOr<GetHistoryResponse> east = ReadHistory(east_->endpoint, index, run_id);
    absl::StatusOr<GetHistoryResponse> west = ReadHistory(west_->endpoint, index, run_id);
    ASSERT_TRUE(east.ok()) << east.status();
    ASSERT_TRUE(west.ok()) << west.status();
    ASSERT_EQ(east->workflow().workflow_id(), workflow_id);
    ASSERT_EQ(east->events_size(), static_cast<int>(script.size())) << workflow_id;
    for (int i = 0; i < east->events_size(); ++i) {
      EXPECT_EQ(east->events(i).event_id(), i + 1) << workflow_id;
      EXPECT_EQ(east->events(i).event_type(), script[i]) << workflow_id << " event " << i + 1;
    }
    EXPECT_EQ(east->status(), WORKFLOW_STATUS_COMPLETED) << workflow_id;
    EXPECT_EQ(east->digest(), digest) << workflow_id;
    EXPECT_EQ(west->digest(), digest) << workflow_id;
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*east, *west))
        << workflow_id << "\neast: " << east->ShortDebugString()
        << "\nwest: " << west->ShortDebugString();
  }
  std::fprintf(stderr,
               "e2e: west killed at %d/%d workflows, restarted at %d; writes took %s, "
               "convergence and checks %s\n",
               done_at_kill, kWorkflows, done_at_restart, absl::FormatDuration(write_time).c_str(),
               absl::FormatDuration(absl::Now() - start - write_time).c_str());
}

TEST_F(E2eTest, ActiveKilledLosesNoAcknowledgedAppend) {
  const absl::Time start = absl::Now();
  StartWriters();
  JoinOnExit join(writers_);

  ASSERT_TRUE(progress_.AwaitAtLeast(kWorkflows / 3, kWriteTimeout));
  ASSERT_NO_FATAL_FAILURE(CrashCluster(*east_));
  const int done_at_kill = progress_.done();
  // Restart east on the same data_dir; writers that lost their connection wait for the new
  // address, re-read their workflow and carry on.
  ASSERT_NO_FATAL_FAILURE(StartCluster(*east_));

  int unknown_outcomes = 0;
  const std::vector<Ack> acks = JoinWriters(&unknown_outcomes);
  EXPECT_LT(done_at_kill, kWorkflows) << "the writers finished before east was killed";
  // Every writer with work left hit the crash (in flight, or connection refused after it).
  EXPECT_GT(unknown_outcomes, 0) << "no write saw east's crash";
  const absl::Duration write_time = absl::Now() - start;

  std::vector<DigestKey> digests;
  ASSERT_NO_FATAL_FAILURE(AwaitConvergence(&digests));
  const int64_t total_events = TotalEvents(digests);
  ASSERT_EQ(total_events, kWorkflows * kEventsPerWorkflow);
  ExpectAppliedExactlyOnce(total_events);

  // Every acknowledged event is in both clusters' history of its run, with its type.
  std::map<std::pair<int, std::string>, std::vector<const Ack*>> by_run;
  for (const Ack& ack : acks) by_run[{ack.workflow, ack.run_id}].push_back(&ack);
  size_t checked_events = 0;
  for (const auto& [run, run_acks] : by_run) {
    const auto& [index, run_id] = run;
    for (Cluster* cluster : {east_.get(), west_.get()}) {
      absl::StatusOr<GetHistoryResponse> history = ReadHistory(cluster->endpoint, index, run_id);
      ASSERT_TRUE(history.ok()) << cluster->name << " " << WorkflowId(index) << " run " << run_id
                                << ": " << history.status();
      for (const Ack* ack : run_acks) {
        for (size_t i = 0; i < ack->types.size(); ++i) {
          const int64_t event_id = ack->first_event_id + static_cast<int64_t>(i);
          ASSERT_LE(event_id, history->events_size())
              << cluster->name << " lost acknowledged event " << event_id << " of "
              << WorkflowId(index) << " run " << run_id;
          const HistoryEvent& event = history->events(static_cast<int>(event_id - 1));
          EXPECT_EQ(event.event_id(), event_id) << cluster->name << " " << WorkflowId(index);
          EXPECT_EQ(event.event_type(), ack->types[i])
              << cluster->name << " " << WorkflowId(index) << " event " << event_id;
          ++checked_events;
        }
      }
    }
  }
  EXPECT_GT(checked_events, 0u);
  std::fprintf(stderr,
               "e2e: east killed at %d/%d workflows; %d calls with unknown outcome, %zu "
               "acknowledged calls checked on both clusters; writes took %s, convergence and "
               "checks %s\n",
               done_at_kill, kWorkflows, unknown_outcomes, acks.size(),
               absl::FormatDuration(write_time).c_str(),
               absl::FormatDuration(absl::Now() - start - write_time).c_str());
}

// Batches of appends (POST /v1/append-batch) to new runs, until east is SIGKILLed: every append
// acknowledged before the kill is on east after its restart and on west, and nothing else is.
TEST_F(E2eTest, EveryBatchedAppendAcknowledgedBeforeASigkillSurvivesIt) {
  constexpr int kBatch = 25;
  constexpr int kBatchesBeforeKill = 8;
  std::atomic<int> answered_batches{0};
  std::set<std::pair<std::string, std::string>> acknowledged;  // (workflow, run); writer only
  std::vector<std::string> errors;                             // writer only
  absl::Status ended;                                          // the call the kill cut off
  int sent_batches = 0;
  const absl::Time give_up = absl::Now() + kWriteTimeout;  // bounds the writer if the kill fails
  std::vector<std::thread> threads;
  JoinOnExit join(threads);
  threads.emplace_back([&] {
    HttpClient client(east_->endpoint.address());
    for (int b = 0; absl::Now() < give_up; ++b) {
      AppendBatchRequest batch;
      for (int k = 0; k < kBatch; ++k) {
        AppendRequest& append = *batch.add_appends();
        append.set_namespace_(kNamespace);
        append.set_workflow_id(absl::StrCat("batched-", b, "-", k));
        append.set_run_id(absl::StrCat("run-", b, "-", k));
        append.set_expected_next_event_id(1);
        append.add_events()->set_event_type(WORKFLOW_EXECUTION_STARTED);
      }
      ++sent_batches;
      AppendBatchResponse answer;
      ended = client.Call("POST", "/v1/append-batch", &batch, answer);
      if (!ended.ok()) return;  // east is gone: this batch's outcome is unknown
      for (int k = 0; k < answer.results_size(); ++k) {
        if (answer.results(k).has_error()) {
          errors.push_back(answer.results(k).ShortDebugString());
        } else {
          acknowledged.emplace(batch.appends(k).workflow_id(), batch.appends(k).run_id());
        }
      }
      ++answered_batches;
    }
  });
  while (answered_batches < kBatchesBeforeKill && absl::Now() < give_up) {
    absl::SleepFor(kPollInterval);
  }
  ASSERT_GE(answered_batches, kBatchesBeforeKill);
  ASSERT_NO_FATAL_FAILURE(CrashCluster(*east_));
  threads.front().join();
  EXPECT_FALSE(ended.ok()) << "the writer stopped without seeing east's crash";
  EXPECT_TRUE(errors.empty()) << errors.size() << " appends refused, the first: " << errors.front();
  ASSERT_NO_FATAL_FAILURE(StartCluster(*east_));

  // East has every acknowledged run (and at most the batch in flight besides); west converges.
  absl::StatusOr<std::vector<DigestKey>> east = ReadDigests(east_->endpoint);
  ASSERT_TRUE(east.ok()) << east.status();
  std::set<std::pair<std::string, std::string>> on_east;
  for (const DigestKey& d : *east) {
    on_east.emplace(std::get<0>(d), std::get<1>(d));
    EXPECT_EQ(std::get<2>(d), 2) << std::get<0>(d);  // one event each
  }
  for (const auto& run : acknowledged) {
    EXPECT_TRUE(on_east.contains(run)) << "east lost acknowledged " << run.first;
  }
  EXPECT_GE(on_east.size(), acknowledged.size());
  EXPECT_LE(on_east.size(), acknowledged.size() + kBatch);
  const absl::Time deadline = absl::Now() + kConvergeTimeout;
  absl::StatusOr<std::vector<DigestKey>> west;
  while ((!(west = ReadDigests(west_->endpoint)).ok() || *west != *east) &&
         absl::Now() < deadline) {
    absl::SleepFor(kPollInterval);
  }
  ASSERT_TRUE(west.ok()) << west.status();
  EXPECT_EQ(*west, *east) << DescribeDifference(*east, *west);
  std::fprintf(stderr,
               "e2e: east killed after %d batches sent, %zu appends acknowledged, %zu on east\n",
               sent_batches, acknowledged.size(), on_east.size());
}

// ---------------------------------------------------------------------------------------------
// Split brain: replication held back (Kafka stopped), both clusters write the same workflows at
// different failover versions, then replication resumes and conflict resolution converges them.
// ---------------------------------------------------------------------------------------------

constexpr int kSplitWorkflows = 12;

std::string SignalInput(const char* cluster, int index) {
  return absl::StrCat(cluster, " signal for ", WorkflowId(index));
}

// Resumes a SIGSTOPped Kafka process when it goes out of scope (also after a failed assertion).
struct ContinueKafka {
  ChildProcess* kafka;
  ~ContinueKafka() { kafka->Kill(SIGCONT).IgnoreError(); }
};

TEST_F(E2eTest, SplitBrainConvergesAndReappliesEachLosingSignalOnce) {
  HttpClient east(east_->endpoint.address());
  HttpClient west(west_->endpoint.address());
  ContinueKafka continue_kafka{kafka_.get()};
  std::vector<std::string> runs;
  ASSERT_NO_FATAL_FAILURE(SplitAfterStarting(east, west, kSplitWorkflows, runs));
  const absl::Time deadline = absl::Now() + kConvergeTimeout;

  // 4. Both clusters accept a signal and one more event on every workflow: east still believes
  //    it is active at version 1, west is active at version 2.
  for (int i = 0; i < kSplitWorkflows; ++i) {
    for (auto [client, cluster, extra] : {std::tuple{&east, "east", ACTIVITY_TASK_COMPLETED},
                                          std::tuple{&west, "west", TIMER_STARTED}}) {
      SignalRequest signal;
      signal.set_namespace_(kNamespace);
      signal.set_workflow_id(WorkflowId(i));
      signal.set_signal_name("poke");
      signal.set_input(SignalInput(cluster, i));
      AppendResponse ack;
      ASSERT_OK(client->Call("POST", "/v1/signal", &signal, ack));
      ASSERT_EQ(ack.first_event_id(), 3) << cluster;
      AppendRequest append;
      append.set_namespace_(kNamespace);
      append.set_workflow_id(WorkflowId(i));
      append.set_run_id(runs[i]);
      append.set_expected_next_event_id(4);
      append.add_events()->set_event_type(extra);
      ASSERT_OK(client->Call("POST", "/v1/append", &append, ack));
      ASSERT_EQ(ack.version(), std::string(cluster) == "east" ? 1 : 2);
    }
  }

  // 5. Release replication and wait until both clusters agree on every run's branches and
  //    current history: west's branch (version 2) wins, east's signal is reapplied on it.
  ASSERT_OK(kafka_->Kill(SIGCONT));
  std::vector<GetHistoryResponse> east_histories(kSplitWorkflows);
  std::vector<GetHistoryResponse> west_histories(kSplitWorkflows);
  for (int i = 0; i < kSplitWorkflows; ++i) {
    for (;;) {
      absl::StatusOr<GetHistoryResponse> e = ReadHistory(east_->endpoint, i, runs[i]);
      absl::StatusOr<GetHistoryResponse> w = ReadHistory(west_->endpoint, i, runs[i]);
      if (e.ok() && w.ok() && e->next_event_id() == 6 && w->next_event_id() == 6 &&
          BranchesOf(e->version_histories()) == BranchesOf(w->version_histories()) &&
          e->digest() == w->digest()) {
        east_histories[i] = *std::move(e);
        west_histories[i] = *std::move(w);
        break;
      }
      ASSERT_LT(absl::Now(), deadline)
          << WorkflowId(i) << " did not converge. east: "
          << (e.ok() ? EventSummary(*e) + e->version_histories().ShortDebugString()
                     : e.status().ToString())
          << "\nwest: "
          << (w.ok() ? EventSummary(*w) + w->version_histories().ShortDebugString()
                     : w.status().ToString());
      absl::SleepFor(kPollInterval);
    }
  }

  // 6. The same branches, current branch and events (with their versions) on both clusters.
  const Branches expected{.all = {{{2, 1}, {5, 2}}, {{4, 1}}}, .current = {{2, 1}, {5, 2}}};
  for (int i = 0; i < kSplitWorkflows; ++i) {
    for (const GetHistoryResponse* history : {&east_histories[i], &west_histories[i]}) {
      SCOPED_TRACE(absl::StrCat(WorkflowId(i), " on ",
                                history == &east_histories[i] ? "east" : "west", ": ",
                                EventSummary(*history)));
      EXPECT_EQ(BranchesOf(history->version_histories()), expected);
      ASSERT_EQ(history->events_size(), 5);
      const std::vector<std::pair<EventType, int64_t>> types_and_versions = {
          {WORKFLOW_EXECUTION_STARTED, 1},
          {ACTIVITY_TASK_SCHEDULED, 1},
          {WORKFLOW_EXECUTION_SIGNALED, 2},
          {TIMER_STARTED, 2},
          {WORKFLOW_EXECUTION_SIGNALED, 2}};
      for (int e = 0; e < 5; ++e) {
        EXPECT_EQ(history->events(e).event_type(), types_and_versions[e].first)
            << "event " << e + 1;
        EXPECT_EQ(history->events(e).version(), types_and_versions[e].second) << "event " << e + 1;
        EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
            history->events(e), west_histories[i].events(e)));
      }
      // Each side's signal exactly once: west's as written, east's (from the losing branch) as
      // a copy that records its origin; east's ACTIVITY_TASK_COMPLETED is not reapplied.
      SignalAttributes west_signal, east_signal;
      ASSERT_TRUE(west_signal.ParseFromString(history->events(2).attributes()));
      ASSERT_TRUE(east_signal.ParseFromString(history->events(4).attributes()));
      EXPECT_EQ(west_signal.input(), SignalInput("west", i));
      EXPECT_EQ(east_signal.input(), SignalInput("east", i));
      EXPECT_FALSE(history->events(2).has_reapplied_from());
      ASSERT_TRUE(history->events(4).has_reapplied_from());
      EXPECT_EQ(history->events(4).reapplied_from().run_id(), runs[i]);
      EXPECT_EQ(history->events(4).reapplied_from().event_id(), 3);
      EXPECT_EQ(history->events(4).reapplied_from().version(), 1);
    }
  }

  // 7. East learned of the failover and refuses writes; nothing was parked on either side.
  for (;;) {
    NamespaceRecord on_east;
    ASSERT_OK(east.Call("GET", absl::StrCat("/v1/namespaces/", kNamespace), nullptr, on_east));
    if (on_east.active_cluster() == "west") break;
    ASSERT_LT(absl::Now(), deadline) << "east did not learn of the failover";
    absl::SleepFor(kPollInterval);
  }
  SignalRequest late;
  late.set_namespace_(kNamespace);
  late.set_workflow_id(WorkflowId(0));
  late.set_signal_name("late");
  AppendResponse refused;
  const absl::Status late_status = east.Call("POST", "/v1/signal", &late, refused);
  EXPECT_TRUE(absl::IsFailedPrecondition(late_status)) << late_status;
  EXPECT_TRUE(absl::StrContains(late_status.message(), "west")) << late_status;
  for (const Endpoint* endpoint : {&east_->endpoint, &west_->endpoint}) {
    absl::StatusOr<StatusResponse> status = ReadStatus(*endpoint);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(status->parked_tasks(), 0) << status->ShortDebugString();
    EXPECT_TRUE(status->halted_appliers().empty()) << status->ShortDebugString();
  }
}

// Idempotent writes across a forced failover: a client signals east with a request id, hears no
// answer (east is cut off and failed over from), and retries the same request on west, the new
// active cluster, which does not have it yet and writes it. When the two branches meet, east's
// copy sits on the losing branch: it is not reapplied, because its request id is already on the
// winning branch. The signal is in the history once, and a retry anywhere answers with west's
// outcome.
TEST_F(E2eTest, ARetryOnTheNewActiveClusterAfterAForcedFailoverLandsOnce) {
  constexpr int kWorkflows = 3;
  HttpClient east(east_->endpoint.address());
  HttpClient west(west_->endpoint.address());
  ContinueKafka continue_kafka{kafka_.get()};
  std::vector<std::string> runs;
  ASSERT_NO_FATAL_FAILURE(SplitAfterStarting(east, west, kWorkflows, runs));
  const absl::Time deadline = absl::Now() + kConvergeTimeout;

  auto signal = [&](int i) {
    SignalRequest request;
    request.set_namespace_(kNamespace);
    request.set_workflow_id(WorkflowId(i));
    request.set_signal_name("pay");
    request.set_input(absl::StrCat("invoice-", i));
    request.set_request_id(absl::StrCat("pay-", i));
    return request;
  };
  for (int i = 0; i < kWorkflows; ++i) {
    SignalRequest request = signal(i);
    AppendResponse on_east, on_west, again;
    ASSERT_OK(east.Call("POST", "/v1/signal", &request, on_east));  // the answer the client lost
    EXPECT_EQ(on_east.version(), 1);
    EXPECT_FALSE(on_east.replayed());
    ASSERT_OK(west.Call("POST", "/v1/signal", &request, on_west));  // its retry
    EXPECT_EQ(on_west.version(), 2);
    EXPECT_EQ(on_west.first_event_id(), 3);
    EXPECT_FALSE(on_west.replayed()) << "west had not received east's signal";
    ASSERT_OK(west.Call("POST", "/v1/signal", &request, again));  // and one more
    EXPECT_TRUE(again.replayed());
    EXPECT_EQ(again.first_event_id(), 3);
    EXPECT_EQ(again.version(), 2);
  }

  // The branches meet: both clusters hold east's branch as the losing one and agree on the rest.
  ASSERT_OK(kafka_->Kill(SIGCONT));
  for (int i = 0; i < kWorkflows; ++i) {
    for (;;) {
      absl::StatusOr<GetHistoryResponse> e = ReadHistory(east_->endpoint, i, runs[i]);
      absl::StatusOr<GetHistoryResponse> w = ReadHistory(west_->endpoint, i, runs[i]);
      if (e.ok() && w.ok() && e->version_histories().histories_size() == 2 &&
          w->version_histories().histories_size() == 2 && e->digest() == w->digest()) {
        for (const GetHistoryResponse* history : {&*e, &*w}) {
          SCOPED_TRACE(EventSummary(*history));
          // Started, scheduled, and the signal once: west's, not a reapplied copy of east's.
          ASSERT_EQ(history->events_size(), 3);
          const HistoryEvent& paid = history->events(2);
          EXPECT_EQ(paid.event_type(), WORKFLOW_EXECUTION_SIGNALED);
          EXPECT_EQ(paid.version(), 2);
          EXPECT_EQ(paid.request().request_id(), absl::StrCat("pay-", i));
          EXPECT_FALSE(paid.has_reapplied_from());
        }
        break;
      }
      ASSERT_LT(absl::Now(), deadline)
          << WorkflowId(i) << " did not converge. east: "
          << (e.ok() ? EventSummary(*e) + e->version_histories().ShortDebugString()
                     : e.status().ToString())
          << "\nwest: "
          << (w.ok() ? EventSummary(*w) + w->version_histories().ShortDebugString()
                     : w.status().ToString());
      absl::SleepFor(kPollInterval);
    }
    // A retry on east, now a standby holding both copies, answers with the winning one.
    SignalRequest request = signal(i);
    AppendResponse replayed;
    ASSERT_OK(east.Call("POST", "/v1/signal", &request, replayed));
    EXPECT_TRUE(replayed.replayed());
    EXPECT_EQ(replayed.version(), 2);
    EXPECT_EQ(replayed.first_event_id(), 3);
    EXPECT_EQ(replayed.run_id(), runs[i]);
  }
}

}  // namespace
}  // namespace xdc
