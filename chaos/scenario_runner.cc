#include "chaos/scenario_runner.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "chaos/cluster_set.h"
#include "chaos/fault_points.h"
#include "chaos/scenarios.h"
#include "replicator/http_client.h"

namespace xdc::chaos {
namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "Interrupt() must be async-signal-safe");

constexpr absl::Duration kRegisterTimeout = absl::Seconds(30);  // every cluster knows the ns
// A graceful handover's own timeout (the request's timeout_ms), and how long past it the runner
// waits for the target's decision before it asks for a cancel.
constexpr absl::Duration kHandoverTimeout = absl::Seconds(10);
constexpr absl::Duration kHandoverAnswerGrace = absl::Seconds(10);
constexpr absl::Duration kAnswerTimeout = absl::Seconds(30);  // a healed daemon answers
constexpr absl::Duration kPoll = absl::Milliseconds(50);      // re-check a condition
// While waiting for a step's offset, wake this often to notice an interrupt.
constexpr absl::Duration kScheduleTick = absl::Milliseconds(50);
constexpr std::chrono::milliseconds kMockRequestTimeout{5000};
constexpr int kLogTailLines = 20;

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

std::string Seconds(int64_t ms) { return absl::StrFormat("%.3fs", static_cast<double>(ms) / 1e3); }

// The execution of one RunOptions into one RunReport.
class Run {
 public:
  Run(const RunOptions& options, RunReport& report) : options_(options), report_(report) {}
  ~Run() {
    for (auto& writer : writers_) writer->Stop();
  }

  void Execute();

 private:
  struct Action {
    int64_t at_ms;
    bool heal;
    int step;
  };

  void Say(const std::string& line) const {
    if (options_.progress == nullptr) return;
    const std::string when = t0_ == absl::InfinitePast()
                                 ? std::string("setup")
                                 : absl::StrCat("+", Seconds(Ms(absl::Now() - t0_)));
    std::fprintf(options_.progress, "[%9s] %s\n", when.c_str(), line.c_str());
    std::fflush(options_.progress);
  }
  void Fail(Verdict verdict, std::string reason) {
    if (report_.verdict != Verdict::kEnvironmentFailed || report_.reason.empty()) {
      report_.verdict = verdict;
      report_.reason = std::move(reason);
    }
  }
  void Violation(std::string invariant, std::string cluster, std::string detail) {
    Say(absl::StrCat("VIOLATION ", invariant, (cluster.empty() ? std::string() : " on " + cluster),
                     ": ", detail));
    report_.runner_violations.push_back(
        {std::move(invariant), std::move(cluster), std::move(detail)});
  }
  int64_t OffsetNow() const { return Ms(absl::Now() - t0_); }
  bool WaitUntilOffset(int64_t ms) const;
  void Record(int step, std::string action, int64_t scheduled_ms, absl::Time started,
              const absl::Status& status, std::string detail);

  [[nodiscard]] absl::Status Setup();
  void StartWriter(const std::string& active);
  void Begin(int index);
  void Heal(int index, const std::string& action);
  void HealEverything();
  void CheckDaemons();
  void RunCheck();
  void Teardown();
  void NoteUnexpectedExits();

  [[nodiscard]] absl::Status MockPost(const std::string& target);
  [[nodiscard]] absl::StatusOr<std::string> BeginStep(const Step& step, int index);
  [[nodiscard]] absl::StatusOr<std::string> HealStep(const Step& step, int index);
  [[nodiscard]] absl::StatusOr<std::string> AwaitHandover(int index);
  [[nodiscard]] absl::StatusOr<std::string> RestartIfHalted(const std::string& cluster);
  [[nodiscard]] absl::StatusOr<std::string> RestartDaemon(const std::string& cluster);

  const RunOptions& options_;
  RunReport& report_;
  const Scenario* scenario_ = nullptr;
  std::vector<std::string> names_;
  std::string topic_prefix_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<ClusterSet> clusters_;
  std::vector<std::unique_ptr<Workload>> writers_;
  absl::Time t0_ = absl::InfinitePast();  // the workload started

  // What is in force, so that the heal undoes exactly that.
  bool broker_paused_ = false;
  bool broker_crashed_ = false;
  std::set<int32_t> mock_down_;
  std::set<int32_t> mock_latency_;
  std::vector<bool> begun_;
  std::vector<bool> healed_;
  std::vector<std::string> handover_source_;  // per step: the source a handover was sent to
  std::set<std::string> store_errors_;        // clusters store.write_error was armed on
  std::set<std::string> exits_reported_;      // clusters whose exit was reported, not restarted
};

bool Run::WaitUntilOffset(int64_t ms) const {
  const absl::Time target = t0_ + absl::Milliseconds(ms);
  for (absl::Time now = absl::Now(); now < target; now = absl::Now()) {
    if (Interrupted()) return false;
    absl::SleepFor(std::min(kScheduleTick, target - now));  // the schedule's own timing
  }
  return !Interrupted();
}

void Run::Record(int step, std::string action, int64_t scheduled_ms, absl::Time started,
                 const absl::Status& status, std::string detail) {
  StepEvent event;
  event.step = step;
  event.action = std::move(action);
  event.scheduled_ms = scheduled_ms;
  event.at_ms = Ms(started - t0_);
  event.took_ms = Ms(absl::Now() - started);
  event.ok = status.ok();
  event.detail = status.ok() ? std::move(detail) : std::string(status.message());
  const std::string what =
      step >= 0 ? absl::StrCat(" #", step, " ", report_.schedule->steps[step].ToString()) : "";
  Say(absl::StrCat(event.action, what, ": ", event.ok ? "" : "FAILED: ", event.detail, " (",
                   event.took_ms, " ms)"));
  report_.events.push_back(std::move(event));
}

absl::Status Run::Setup() {
  std::error_code ec;
  std::filesystem::create_directories(options_.work_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("creating ", options_.work_dir, ": ", ec.message()));
  }
  BrokerOptions broker_options;
  broker_options.kind = options_.broker;
  broker_options.work_dir = options_.work_dir + "/broker";
  broker_options.clusters = names_;
  broker_options.shard_count = kShardCount;
  broker_options.topic_prefix = topic_prefix_;
  broker_options.mock_binary = options_.bin_dir + "/xdc-kafka-mock";
  report_.logs["broker"] = broker_options.work_dir;
  Say(absl::StrCat("starting the ", std::string(BrokerKindName(options_.broker)), " broker in ",
                   broker_options.work_dir));
  absl::StatusOr<std::unique_ptr<Broker>> broker = Broker::Start(broker_options);
  if (!broker.ok()) {
    return absl::Status(broker.status().code(),
                        absl::StrCat("the broker did not start: ", broker.status().message()));
  }
  broker_ = *std::move(broker);

  ClusterSetOptions cluster_options;
  cluster_options.work_dir = options_.work_dir;
  cluster_options.xdcd_binary = options_.bin_dir + "/xdcd";
  cluster_options.clusters = names_;
  cluster_options.shard_count = kShardCount;
  cluster_options.bootstrap = broker_->bootstrap();
  cluster_options.topic_prefix = topic_prefix_;
  absl::StatusOr<std::unique_ptr<ClusterSet>> clusters = ClusterSet::Create(cluster_options);
  if (!clusters.ok()) return clusters.status();
  clusters_ = *std::move(clusters);
  for (const std::string& name : names_) report_.logs[name] = clusters_->log_path(name);
  Say(absl::StrCat("starting xdcd ", absl::StrJoin(names_, ", "), " on ", broker_->bootstrap(),
                   " (topic prefix ", topic_prefix_, ")"));
  if (absl::Status s = clusters_->StartAll(); !s.ok()) return s;
  if (absl::Status s =
          clusters_->RegisterNamespace(kChaosNamespace, kInitialActive, kRegisterTimeout);
      !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("registering namespace ", kChaosNamespace, ": ", s.message()));
  }
  return absl::OkStatus();
}

void Run::StartWriter(const std::string& active) {
  const int k = static_cast<int>(writers_.size());
  WorkloadOptions options;
  options.namespace_name = kChaosNamespace;
  options.workflows = scenario_->load.workflows;
  options.signal_fraction = scenario_->load.signal_fraction;
  options.rate_per_second =
      options_.rate_per_second >= 0 ? options_.rate_per_second : scenario_->load.rate_per_second;
  options.seed = report_.schedule->workload_seed + static_cast<uint64_t>(k);
  options.writer_id = absl::StrCat("w", k);
  ClusterSet* clusters = clusters_.get();
  writers_.push_back(std::make_unique<Workload>(
      options, names_, active,
      [clusters](const std::string& cluster) { return clusters->address(cluster); }));
  writers_.back()->Start();
  report_.writers = static_cast<int>(writers_.size());
  Say(absl::StrCat("writer w", k, " started on ", active, " (",
                   options.rate_per_second == 0 ? std::string("closed loop")
                                                : absl::StrCat(options.rate_per_second, "/s"),
                   ", ", options.workflows, " workflows)"));
}

absl::Status Run::MockPost(const std::string& target) {
  if (broker_->mock_control_address().empty()) {
    return absl::FailedPreconditionError("the broker has no mock control API (not the mock)");
  }
  HttpClient client(broker_->mock_control_address(), kMockRequestTimeout);
  absl::StatusOr<HttpResult> result = client.Request("POST", target);
  if (!result.ok()) return result.status();
  if (result->status < 200 || result->status >= 300) {
    return absl::InternalError(
        absl::StrCat("POST ", target, " answered ", result->status, ": ", result->body));
  }
  return absl::OkStatus();
}

std::string Hold(const std::string& peer) {
  return absl::StrCat(std::string(fault::kApplyHoldPrefix), peer);
}

absl::StatusOr<std::string> Run::RestartDaemon(const std::string& cluster) {
  if (clusters_->running(cluster)) {
    if (absl::Status s = clusters_->Kill(cluster); !s.ok()) return s;
  }
  if (absl::Status s = clusters_->Start(cluster); !s.ok()) {
    Violation("daemon_restarts", cluster,
              absl::StrCat(s.message(), "; log ", clusters_->log_path(cluster)));
    return s;
  }
  store_errors_.erase(cluster);
  return absl::StrCat("restarted on ", clusters_->address(cluster));
}

absl::StatusOr<std::string> Run::RestartIfHalted(const std::string& cluster) {
  absl::StatusOr<StatusResponse> status = clusters_->Status(cluster);
  if (!status.ok()) return status.status();
  if (status->store_write_error().empty() && status->halted_appliers().empty()) {
    return std::string("disarmed; xdcd did not halt");
  }
  const std::string why = !status->store_write_error().empty()
                              ? absl::StrCat("store latched: ", status->store_write_error())
                              : absl::StrJoin(status->halted_appliers(), "; ");
  absl::StatusOr<std::string> restarted = RestartDaemon(cluster);
  if (!restarted.ok()) return restarted.status();
  return absl::StrCat("disarmed; xdcd had halted (", why, "), so it was ", *restarted,
                      " as an operator would");
}

absl::StatusOr<std::string> Run::BeginStep(const Step& step, int index) {
  switch (step.kind) {
    case FaultKind::kKillDaemon:
      if (absl::Status s = clusters_->Kill(step.cluster); !s.ok()) return s;
      return std::string("SIGKILL");
    case FaultKind::kPauseDaemon:
      if (absl::Status s = clusters_->Pause(step.cluster); !s.ok()) return s;
      return std::string("SIGSTOP");
    case FaultKind::kCrashBroker:
      if (absl::Status s = broker_->Crash(); !s.ok()) return s;
      broker_crashed_ = true;
      return std::string("SIGKILL");
    case FaultKind::kPauseBroker:
      if (absl::Status s = broker_->Pause(); !s.ok()) return s;
      broker_paused_ = true;
      return std::string("SIGSTOP");
    case FaultKind::kBrokerDown:
      if (absl::Status s = MockPost(absl::StrCat("/v1/mock/brokers/", step.broker_id, "/down"));
          !s.ok()) {
        return s;
      }
      mock_down_.insert(step.broker_id);
      return std::string("broker down");
    case FaultKind::kBrokerLatency:
      if (absl::Status s =
              MockPost(absl::StrCat("/v1/mock/brokers/", step.broker_id, "/rtt?ms=", step.rtt_ms));
          !s.ok()) {
        return s;
      }
      mock_latency_.insert(step.broker_id);
      return absl::StrCat("rtt ", step.rtt_ms, " ms");
    case FaultKind::kRequestErrors:
      if (absl::Status s = MockPost(
              absl::StrCat("/v1/mock/request-errors?api=", step.api, "&count=", step.count));
          !s.ok()) {
        return s;
      }
      return absl::StrCat("the next ", step.count, " ", step.api, " requests fail");
    case FaultKind::kPartition: {
      absl::StatusOr<std::vector<std::string>> a =
          clusters_->SetFaultPoints(step.cluster, {Hold(step.peer)}, {});
      if (!a.ok()) return a.status();
      absl::StatusOr<std::vector<std::string>> b =
          clusters_->SetFaultPoints(step.peer, {Hold(step.cluster)}, {});
      if (!b.ok()) return b.status();
      return absl::StrCat("armed ", absl::StrJoin(*a, ","), " on ", step.cluster, " and ",
                          absl::StrJoin(*b, ","), " on ", step.peer);
    }
    case FaultKind::kFaultPoint: {
      if (step.fault_point == kFaultStoreWriteError) store_errors_.insert(step.cluster);
      absl::StatusOr<std::vector<std::string>> armed =
          clusters_->SetFaultPoints(step.cluster, {step.fault_point}, {});
      if (!armed.ok()) return armed.status();
      return absl::StrCat("armed: ", absl::StrJoin(*armed, ","));
    }
    case FaultKind::kForcedFailover: {
      absl::StatusOr<NamespaceRecord> record =
          clusters_->ForceFailover(kChaosNamespace, step.cluster);
      if (!record.ok()) return record.status();
      if (scenario_->writer_on_each_forced_failover) StartWriter(step.cluster);
      return absl::StrCat("active on ", record->active_cluster(), " at failover version ",
                          record->failover_version());
    }
    case FaultKind::kHandover: {
      absl::StatusOr<NamespaceRecord> newest = clusters_->NewestNamespace(kChaosNamespace);
      if (!newest.ok()) return newest.status();
      if (newest->active_cluster() == step.cluster) {
        return absl::FailedPreconditionError(
            absl::StrCat("not sent: the namespace is already active on ", step.cluster));
      }
      if (newest->state() == NAMESPACE_STATE_HANDOVER) {
        return absl::FailedPreconditionError(absl::StrCat("not sent: ", newest->active_cluster(),
                                                          " is still handing over to ",
                                                          newest->handover().target_cluster()));
      }
      absl::StatusOr<NamespaceRecord> record = clusters_->BeginHandover(
          kChaosNamespace, newest->active_cluster(), step.cluster, kHandoverTimeout);
      if (!record.ok()) return record.status();
      handover_source_[index] = newest->active_cluster();
      return absl::StrCat(newest->active_cluster(), " in HANDOVER, proposing version ",
                          record->handover().proposed_version());
    }
  }
  return absl::InternalError("unknown step kind");
}

absl::StatusOr<std::string> Run::AwaitHandover(int index) {
  const Step& step = report_.schedule->steps[index];
  const std::string& source = handover_source_[index];
  bool cancel_sent = false;
  absl::Time deadline = absl::Now() + kHandoverTimeout + kHandoverAnswerGrace;
  for (;;) {
    absl::StatusOr<NamespaceRecord> newest = clusters_->NewestNamespace(kChaosNamespace);
    if (newest.ok() && newest->state() == NAMESPACE_STATE_ACTIVE) {
      const FailoverEvent* last =
          newest->failover_history_size() > 0
              ? &newest->failover_history(newest->failover_history_size() - 1)
              : nullptr;
      const std::string refused =
          last == nullptr
              ? std::string()
              : absl::StrFormat("; writes refused for %.3f s",
                                static_cast<double>(last->writes_refused_micros()) / 1e6);
      if (newest->active_cluster() == step.cluster) {
        return absl::StrCat("completed: active on ", step.cluster, " at failover version ",
                            newest->failover_version(), refused);
      }
      if (newest->active_cluster() == source) {
        return absl::FailedPreconditionError(
            absl::StrCat("cancelled: active on ", source, " again (",
                         last == nullptr ? "no reason" : last->reason(), ")", refused));
      }
      return absl::FailedPreconditionError(absl::StrCat("ended with the namespace active on ",
                                                        newest->active_cluster(), ", neither ",
                                                        source, " nor ", step.cluster));
    }
    if (absl::Now() >= deadline) {
      if (cancel_sent) {
        return absl::DeadlineExceededError(absl::StrCat(
            "undecided: ", source, " is still in HANDOVER to ", step.cluster, " after a cancel (",
            newest.ok() ? newest->ShortDebugString() : newest.status().ToString(), ")"));
      }
      // Leave the namespace decided before the check, as an operator would.
      absl::StatusOr<NamespaceRecord> cancelled =
          clusters_->CancelHandover(kChaosNamespace, source, "xdc-chaos: not decided in time");
      Say(absl::StrCat(
          "handover to ", step.cluster, " not decided in time: cancel sent to ", source,
          cancelled.ok() ? "" : absl::StrCat(" (", cancelled.status().ToString(), ")")));
      cancel_sent = true;
      deadline = absl::Now() + kHandoverAnswerGrace;
    }
    absl::SleepFor(kPoll);
  }
}

absl::StatusOr<std::string> Run::HealStep(const Step& step, int index) {
  switch (step.kind) {
    case FaultKind::kKillDaemon:
      if (clusters_->running(step.cluster)) return std::string("already running");
      if (absl::Status s = clusters_->Start(step.cluster); !s.ok()) {
        Violation("daemon_restarts", step.cluster,
                  absl::StrCat(s.message(), "; log ", clusters_->log_path(step.cluster)));
        return s;
      }
      return absl::StrCat("restarted on ", clusters_->address(step.cluster));
    case FaultKind::kPauseDaemon:
      if (!clusters_->paused(step.cluster)) return std::string("not paused");
      if (absl::Status s = clusters_->Resume(step.cluster); !s.ok()) return s;
      return std::string("SIGCONT");
    case FaultKind::kCrashBroker:
      if (!broker_crashed_) return std::string("not crashed");
      if (absl::Status s = broker_->Restart(); !s.ok()) return s;
      broker_crashed_ = false;
      return std::string("restarted");
    case FaultKind::kPauseBroker:
      if (!broker_paused_) return std::string("not paused");
      if (absl::Status s = broker_->Resume(); !s.ok()) return s;
      broker_paused_ = false;
      return std::string("SIGCONT");
    case FaultKind::kBrokerDown:
      if (absl::Status s = MockPost(absl::StrCat("/v1/mock/brokers/", step.broker_id, "/up"));
          !s.ok()) {
        return s;
      }
      mock_down_.erase(step.broker_id);
      return std::string("broker up");
    case FaultKind::kBrokerLatency:
      if (absl::Status s = MockPost(absl::StrCat("/v1/mock/brokers/", step.broker_id, "/rtt?ms=0"));
          !s.ok()) {
        return s;
      }
      mock_latency_.erase(step.broker_id);
      return std::string("rtt 0 ms");
    case FaultKind::kRequestErrors:
    case FaultKind::kForcedFailover:
      return std::string("nothing to heal");
    case FaultKind::kPartition: {
      absl::StatusOr<std::vector<std::string>> a =
          clusters_->SetFaultPoints(step.cluster, {}, {Hold(step.peer)});
      absl::StatusOr<std::vector<std::string>> b =
          clusters_->SetFaultPoints(step.peer, {}, {Hold(step.cluster)});
      if (!a.ok()) return a.status();
      if (!b.ok()) return b.status();
      return std::string("disarmed on both sides");
    }
    case FaultKind::kFaultPoint: {
      absl::StatusOr<std::vector<std::string>> armed =
          clusters_->SetFaultPoints(step.cluster, {}, {step.fault_point});
      if (!armed.ok()) return armed.status();
      if (step.fault_point == kFaultStoreWriteError) return RestartIfHalted(step.cluster);
      return absl::StrCat("disarmed",
                          armed->empty() ? "" : "; still armed: ", absl::StrJoin(*armed, ","));
    }
    case FaultKind::kHandover:
      return AwaitHandover(index);
  }
  return absl::InternalError("unknown step kind");
}

void Run::Begin(int index) {
  const Step& step = report_.schedule->steps[index];
  const absl::Time started = absl::Now();
  absl::StatusOr<std::string> done = BeginStep(step, index);
  begun_[index] = done.ok();
  if (!done.ok() && step.kind == FaultKind::kHandover && scenario_->handovers_must_complete) {
    Violation("handover_completed", step.cluster, std::string(done.status().message()));
  }
  Record(index, "begin", step.start_ms, started, done.status(), done.ok() ? *done : "");
}

void Run::Heal(int index, const std::string& action) {
  const Step& step = report_.schedule->steps[index];
  if (!begun_[index] || healed_[index]) return;
  healed_[index] = true;
  const absl::Time started = absl::Now();
  absl::StatusOr<std::string> done = HealStep(step, index);
  if (!done.ok() && step.kind == FaultKind::kHandover && scenario_->handovers_must_complete) {
    Violation("handover_completed", step.cluster, std::string(done.status().message()));
  }
  Record(index, action, step.heal_ms, started, done.status(), done.ok() ? *done : "");
}

void Run::NoteUnexpectedExits() {
  for (const std::string& name : names_) {
    const std::string how = clusters_->unexpected_exit(name);
    if (how.empty()) continue;
    if (exits_reported_.contains(name)) continue;  // reported; restarted below
    exits_reported_.insert(name);
    Violation("daemon_alive", name,
              absl::StrCat("xdcd exited on its own (", how, "); log ", clusters_->log_path(name),
                           "; its end:\n", clusters_->LogTail(name, kLogTailLines)));
    const absl::Time started = absl::Now();
    absl::StatusOr<std::string> restarted = RestartDaemon(name);
    if (restarted.ok()) exits_reported_.erase(name);
    Record(-1, "restart-after-exit", OffsetNow(), started, restarted.status(),
           restarted.ok() ? *restarted : "");
  }
}

void Run::HealEverything() {
  const absl::Time started = absl::Now();
  std::vector<std::string> done;
  absl::Status first;
  auto note = [&](const absl::Status& s, const std::string& what) {
    if (s.ok()) {
      done.push_back(what);
    } else if (first.ok()) {
      first = absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
    }
  };
  if (broker_crashed_) {
    note(broker_->Restart(), "broker restarted");
    broker_crashed_ = false;
  }
  if (broker_paused_) {
    note(broker_->Resume(), "broker resumed");
    broker_paused_ = false;
  }
  for (int32_t id : std::set<int32_t>(mock_down_)) {
    note(MockPost(absl::StrCat("/v1/mock/brokers/", id, "/up")),
         absl::StrCat("broker ", id, " up"));
  }
  mock_down_.clear();
  for (int32_t id : std::set<int32_t>(mock_latency_)) {
    note(MockPost(absl::StrCat("/v1/mock/brokers/", id, "/rtt?ms=0")),
         absl::StrCat("broker ", id, " rtt 0"));
  }
  mock_latency_.clear();
  for (const std::string& name : names_) {
    if (clusters_->paused(name)) note(clusters_->Resume(name), absl::StrCat(name, " resumed"));
  }
  NoteUnexpectedExits();
  for (const std::string& name : names_) {
    if (!clusters_->running(name)) {
      absl::StatusOr<std::string> restarted = RestartDaemon(name);
      note(restarted.status(), absl::StrCat(name, " restarted"));
    }
  }
  Record(-1, "heal-all", report_.schedule->duration_ms, started, first,
         done.empty() ? "nothing was still in force" : absl::StrJoin(done, ", "));

  // Steps still in force (a late heal, a handover still deciding) heal in order.
  for (size_t i = 0; i < report_.schedule->steps.size(); ++i) {
    const Step& step = report_.schedule->steps[i];
    if (!step.heal_after_check && !step.instantaneous()) Heal(static_cast<int>(i), "heal-all");
  }
  // Whatever is still armed (except what must last through the check) is disarmed.
  std::set<std::string> keep;
  for (const Step& step : report_.schedule->steps) {
    if (step.heal_after_check) keep.insert(step.fault_point);
  }
  for (const std::string& name : names_) {
    std::vector<std::string> disarm;
    for (const std::string& point : clusters_->armed(name)) {
      if (!keep.contains(point)) disarm.push_back(point);
    }
    if (disarm.empty()) continue;
    const absl::Time at = absl::Now();
    absl::StatusOr<std::vector<std::string>> armed = clusters_->SetFaultPoints(name, {}, disarm);
    Record(-1, "heal-all", report_.schedule->duration_ms, at, armed.status(),
           absl::StrCat("disarmed ", absl::StrJoin(disarm, ","), " on ", name));
    if (armed.ok() && store_errors_.contains(name)) {
      const absl::Time restart_at = absl::Now();
      absl::StatusOr<std::string> restarted = RestartIfHalted(name);
      Record(-1, "heal-all", report_.schedule->duration_ms, restart_at, restarted.status(),
             restarted.ok() ? *restarted : "");
    }
  }
}

void Run::CheckDaemons() {
  NoteUnexpectedExits();
  for (const std::string& name : names_) {
    const absl::Time deadline = absl::Now() + kAnswerTimeout;
    absl::StatusOr<StatusResponse> status = clusters_->Status(name);
    while (!status.ok() && absl::Now() < deadline) {
      absl::SleepFor(kPoll);
      status = clusters_->Status(name);
    }
    if (!status.ok()) {
      Violation(
          "daemon_answers", name,
          absl::StrCat("no answer to GET /v1/status within ", absl::FormatDuration(kAnswerTimeout),
                       " after the heal: ", status.status().message()));
      continue;
    }
    for (const std::string& halted : status->halted_appliers()) {
      Violation("appliers_running", name, halted);
    }
    if (!status->store_write_error().empty()) {
      Violation("store_writable", name, status->store_write_error());
    }
  }
}

void Run::RunCheck() {
  CheckOptions check_options;
  check_options.namespace_name = kChaosNamespace;
  check_options.allow_lost_appends = scenario_->allow_lost_appends;
  check_options.allowed_dlq_reasons.insert(scenario_->allowed_dlq_reasons.begin(),
                                           scenario_->allowed_dlq_reasons.end());
  check_options.quiesce_timeout = scenario_->quiesce_timeout;
  std::vector<ClusterEndpoint> endpoints;
  for (const std::string& name : names_) endpoints.push_back({name, clusters_->address(name)});
  std::vector<AckedWrite> ledger;
  for (const auto& writer : writers_) {
    std::vector<AckedWrite> part = writer->Ledger();
    ledger.insert(ledger.end(), part.begin(), part.end());
  }
  Say(absl::StrCat("checking ", ledger.size(), " acknowledged writes on ",
                   absl::StrJoin(names_, ", "), " (waiting up to ",
                   absl::FormatDuration(check_options.quiesce_timeout), " to quiesce)"));
  absl::StatusOr<CheckResult> result = WaitAndCheck(endpoints, ledger, check_options);
  if (!result.ok()) {
    report_.check_error = result.status().ToString();
    return;
  }
  report_.check = *std::move(result);
}

void Run::Teardown() {
  if (clusters_ != nullptr) {
    if (absl::Status s = clusters_->StopAll(); !s.ok()) Say(absl::StrCat("note: ", s.message()));
  }
  if (broker_ != nullptr) {
    if (broker_paused_) broker_->Resume().IgnoreError();
    if (broker_->running()) {
      if (absl::Status s = broker_->Stop(); !s.ok()) Say(absl::StrCat("note: ", s.message()));
    }
  }
}

void Run::Execute() {
  const absl::Time run_start = absl::Now();
  report_.started_at = absl::FormatTime(absl::RFC3339_sec, run_start, absl::UTCTimeZone());
  scenario_ = FindScenario(options_.scenario);
  if (scenario_ == nullptr) {
    Fail(Verdict::kEnvironmentFailed, absl::StrCat("no scenario named '", options_.scenario, "'"));
    return;
  }
  report_.proves = scenario_->proves;
  for (int i = 0; i < options_.clusters && i < static_cast<int>(std::size(kClusterNames)); ++i) {
    names_.push_back(kClusterNames[i]);
  }
  ScheduleInput input;
  input.scenario = scenario_->name;
  input.pattern = scenario_->pattern;
  input.seed = options_.seed;
  input.duration = options_.duration;
  input.clusters = names_;
  input.initial_active = kInitialActive;
  input.broker = options_.broker;
  absl::StatusOr<Schedule> schedule = BuildSchedule(input);
  if (!schedule.ok()) {
    Fail(Verdict::kEnvironmentFailed, std::string(schedule.status().message()));
    return;
  }
  report_.schedule = *std::move(schedule);
  const size_t n = report_.schedule->steps.size();
  begun_.assign(n, false);
  healed_.assign(n, false);
  handover_source_.assign(n, "");
  topic_prefix_ =
      absl::StrFormat("chaos-%d-%d", static_cast<int>(getpid()), Ms(run_start - absl::UnixEpoch()));
  if (options_.progress != nullptr) {
    std::fprintf(options_.progress, "%s", report_.schedule->ToString().c_str());
  }

  report_.verdict = Verdict::kPassed;
  if (absl::Status s = Setup(); !s.ok()) {
    Fail(Verdict::kEnvironmentFailed, absl::StrCat("setup failed: ", s.message()));
    Teardown();
    report_.elapsed = absl::Now() - run_start;
    return;
  }

  t0_ = absl::Now();
  StartWriter(kInitialActive);
  std::vector<Action> actions;
  for (size_t i = 0; i < n; ++i) {
    const Step& step = report_.schedule->steps[i];
    actions.push_back({step.start_ms, false, static_cast<int>(i)});
    if (!step.instantaneous() && !step.heal_after_check) {
      actions.push_back({step.heal_ms, true, static_cast<int>(i)});
    }
  }
  std::stable_sort(actions.begin(), actions.end(), [](const Action& a, const Action& b) {
    if (a.at_ms != b.at_ms) return a.at_ms < b.at_ms;
    return a.heal && !b.heal;  // at one offset, heal before the next fault begins
  });
  // An action that blocks (a restart waits until the process is ready: a real broker takes
  // seconds) delays every later one by as long as it took, so that each fault keeps its length
  // and each gap its size; the fault window grows by the same amount.
  int64_t shift_ms = 0;
  bool interrupted = false;
  for (const Action& action : actions) {
    if (!WaitUntilOffset(action.at_ms + shift_ms)) {
      interrupted = true;
      break;
    }
    const absl::Time started = absl::Now();
    NoteUnexpectedExits();
    action.heal ? Heal(action.step, "heal") : Begin(action.step);
    shift_ms += Ms(absl::Now() - started);
  }
  if (!interrupted) {
    interrupted = !WaitUntilOffset(report_.schedule->duration_ms + shift_ms);
  }

  HealEverything();
  for (auto& writer : writers_) writer->Stop();
  for (const auto& writer : writers_) {
    const Workload::Stats stats = writer->stats();
    report_.workload.acked += stats.acked;
    report_.workload.refused += stats.refused;
    report_.workload.unknown_outcome += stats.unknown_outcome;
    report_.workload.transport_errors += stats.transport_errors;
    report_.workload.unexpected += stats.unexpected;
    if (!stats.last_unexpected.empty()) report_.workload.last_unexpected = stats.last_unexpected;
  }
  Say(absl::StrCat("workload stopped: ", report_.workload.acked, " acknowledged writes"));
  if (interrupted) {
    Fail(Verdict::kEnvironmentFailed, "interrupted before the check");
    Teardown();
    report_.elapsed = absl::Now() - run_start;
    return;
  }
  if (report_.workload.acked == 0) {
    Violation("made_progress", "", "the workload got no acknowledgement during the whole run");
  }
  CheckDaemons();
  RunCheck();

  // The lasting damage of the self-test is healed only now.
  for (size_t i = 0; i < n; ++i) {
    const Step& step = report_.schedule->steps[i];
    if (!step.heal_after_check || !begun_[i]) continue;
    const absl::Time started = absl::Now();
    absl::StatusOr<std::vector<std::string>> armed =
        clusters_->SetFaultPoints(step.cluster, {}, {step.fault_point});
    healed_[i] = true;
    Record(static_cast<int>(i), "after-check", step.heal_ms, started, armed.status(), "disarmed");
  }
  Teardown();

  // A runner violation (a daemon that died or hangs) may be why the check could not be made:
  // it is a verdict on the product, so it wins over the check's own error.
  const bool check_failed = report_.check.has_value() && !report_.check->passed();
  if (!report_.runner_violations.empty() || check_failed) {
    std::vector<std::string> what;
    if (report_.check.has_value()) {
      for (const auto& [invariant, count] : report_.check->violation_counts) {
        what.push_back(absl::StrCat(invariant, " x", count));
      }
    }
    for (const RunnerViolation& v : report_.runner_violations) what.push_back(v.invariant);
    if (!report_.check_error.empty()) what.push_back("the check could not be made");
    Fail(Verdict::kViolated, absl::StrCat("violated: ", absl::StrJoin(what, ", ")));
  } else if (!report_.check_error.empty()) {
    Fail(Verdict::kEnvironmentFailed,
         absl::StrCat("the check could not be made: ", report_.check_error));
  } else {
    report_.reason = "every invariant held";
  }
  report_.elapsed = absl::Now() - run_start;
}

}  // namespace

void Interrupt() { g_interrupted.store(true, std::memory_order_relaxed); }
bool Interrupted() { return g_interrupted.load(std::memory_order_relaxed); }

RunReport RunScenario(const RunOptions& options) {
  RunReport report;
  report.options = options;
  {
    Run run(options, report);
    run.Execute();
  }
  if (options.remove_work_dir_on_pass && report.verdict == Verdict::kPassed) {
    std::error_code ec;
    std::filesystem::remove_all(options.work_dir, ec);
    report.work_dir_kept = static_cast<bool>(ec);
  }
  return report;
}

}  // namespace xdc::chaos
