// Randomized convergence property test of the pure replication logic (DESIGN.md "Conflict
// resolution" and "Control plane: namespace failover"). No Kafka, RocksDB, threads or clock.
//
// One case is one random scenario:
//   - 2 or 3 clusters (initial failover versions 1, 2, 3; increment 10 or 100), one namespace,
//     1-3 runs of one workflow. Each cluster has its own view of the namespace (active cluster,
//     failover version), its own mutable state per run and its own event store keyed by
//     (event id, version), read through an EventReader.
//   - Writes: a cluster that is active in its own view (and owns that view's version) starts a run
//     or appends 1-3 random events at the view's version to the current branch, refused if
//     ApplyEventToState refuses any of them. Acknowledged signals, cancel requests and terminations
//     go into a ledger. Every acknowledged write replicates as a task to every other cluster.
//   - Forced failover: a cluster takes NextVersionFor(its view's version) and activates at once;
//     its view reaches the others as a namespace message, sometimes at once, sometimes held back,
//     so split brain (two clusters active at different versions) is common. Views merge by version.
//   - Network: per-destination pools, random order, duplicates, losses. A lost task is either
//     superseded by a later task of the same branch (so the receiver sees a gap and asks for a
//     resend) or re-published later by the source's outbox (at-least-once, as the design's
//     transactional outbox guarantees); resend requests and answers may be lost outright.
//   - Apply: DecideApply with the receiver's state and store. kApply writes (and replicates the
//     copies reapplication appended, as this cluster's writes); kGap parks the task and asks the
//     source to resend [expected, first) of the task's branch, which it answers from its store in
//     random chunks; parked tasks are retried after every apply and asked for again when the
//     network is idle. kInvalid and kReadError fail the case.
//   - Heal: views converge to the highest one; everything is delivered without loss; the final
//     active cluster sweeps every run with Reapply (what the daemon does on activation; in the
//     random phase a cluster that fails over sweeps at once, later, or never); deliver again
//     until quiet.
//   - Invariants at the end: identical branches, current branch, events, next event id and status
//     on every cluster; every acknowledged reapplicable event on the final current branch exactly
//     once (itself or a copy) unless the run closed; every branch valid, fully stored, not a
//     prefix of another; the current branch the greatest, its events contiguous and following the
//     run's rules; copies only of outside input and faithful to their origin; no reapply_pending
//     left; a second sweep has nothing to do.
//   - Invariants after every write, apply and sweep: no event written twice (DecideApply's
//     events_to_write are new), the current branch is the greatest and matches next_event_id,
//     reapply_pending is exactly "FindEventsToReapply has something and the run is open", and a
//     batch that closed the run with a reapplied termination left only terminations behind.
//
// Environment: XDC_PROPERTY_CASES (default 100000), XDC_PROPERTY_BASE_SEED, XDC_PROPERTY_SEED=<n>
// (replay only that case, with its trace), XDC_PROPERTY_TRACE=1 (print the trace of a replayed
// case even when it passes).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "protocol/conflict_resolver.h"
#include "protocol/event_reader.h"
#include "protocol/failover_version.h"
#include "protocol/reapplication.h"
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"
#include "protocol/xdc.pb.h"

namespace xdc {
namespace {

constexpr uint64_t kDefaultBaseSeed = 0x7864632d636f6e76ULL;  // "xdc-conv"
constexpr int64_t kDefaultCases = 100000;
// Bounds that turn a livelock into a failure instead of a hang.
constexpr int kMaxHealDeliveries = 20000;
constexpr int kMaxHealRounds = 50;

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Deterministic on every platform (unlike std:: distributions), so a seed replays anywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  int Uniform(int n) { return static_cast<int>(SplitMix64(state_) % static_cast<uint64_t>(n)); }
  int Between(int low, int high) { return low + Uniform(high - low + 1); }
  bool Percent(int percent) { return Uniform(100) < percent; }

 private:
  uint64_t state_;
};

using EventKey = std::pair<int64_t, int64_t>;  // event id, version
using EventStore = std::map<EventKey, HistoryEvent>;

class StoreReader final : public EventReader {
 public:
  explicit StoreReader(const EventStore& store) : store_(store) {}
  absl::StatusOr<HistoryEvent> Read(int64_t event_id, int64_t version) const override {
    auto it = store_.find({event_id, version});
    if (it == store_.end()) {
      return absl::NotFoundError(
          absl::StrFormat("event %d (version %d) is not stored", event_id, version));
    }
    return it->second;
  }

 private:
  const EventStore& store_;
};

struct View {
  int active = 0;
  int64_t version = 0;
};

enum class MessageKind { kTask, kView, kResendRequest };

struct Message {
  MessageKind kind = MessageKind::kTask;
  int from = 0;
  int run = 0;
  bool resend_answer = false;  // kTask: sent in answer to a resend request
  bool late = false;           // kView: the scheduler holds it back most of the time
  ReplicationTask task;        // kTask
  View view;                   // kView
  VersionHistory branch;       // kResendRequest: the branch, reaching next_event_id - 1
  int64_t first_event_id = 0;  // kResendRequest: [first, next)
  int64_t next_event_id = 0;
};

struct Parked {
  ReplicationTask task;
  int from = 0;
  int run = 0;
};

struct Cluster {
  int64_t initial_version = 0;
  View view;
  std::vector<std::optional<WorkflowMutableState>> states;  // per run
  std::vector<EventStore> stores;                           // per run
  std::vector<Parked> parked;                               // in arrival order
  std::vector<Message> inbox;
  bool sweep_due = false;  // activated here and not swept yet
};

// An acknowledged reapplicable event: (run, event id, version) of its origin.
struct LedgerEntry {
  int run = 0;
  int64_t event_id = 0;
  int64_t version = 0;
};

struct Counts {
  int64_t writes = 0;
  int64_t refused_writes = 0;
  int64_t split_brain_writes = 0;  // acknowledged at a version below another cluster's view
  int64_t ledger = 0;
  int64_t failovers = 0;
  int64_t applies = 0;
  int64_t forks = 0;
  int64_t switches = 0;
  int64_t extended_other = 0;
  int64_t duplicates = 0;
  int64_t gaps = 0;
  int64_t resend_requests = 0;
  int64_t resend_answers = 0;
  int64_t lost = 0;
  int64_t republished = 0;
  int64_t duplicated_deliveries = 0;
  int64_t reapplied_copies = 0;
  int64_t sweep_copies = 0;  // of reapplied_copies: appended by a sweep
  int64_t reapply_dropped_closed = 0;
  int64_t ledger_dropped_closed = 0;
  // Shape of the final histories (cluster 0).
  int64_t runs_with_three_branches = 0;
  int64_t losing_copies = 0;  // reapplied copies that ended on a losing branch themselves
};

std::string ItemsString(const VersionHistory& history) {
  std::vector<std::string> parts;
  for (const VersionHistoryItem& item : history.items()) {
    parts.push_back(absl::StrFormat("%d@%d", item.event_id(), item.version()));
  }
  return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
}

std::string ItemsString(const google::protobuf::RepeatedPtrField<VersionHistoryItem>& items) {
  VersionHistory history;
  *history.mutable_items() = items;
  return ItemsString(history);
}

const char* ShortType(EventType type) {
  switch (type) {
    case WORKFLOW_EXECUTION_STARTED:
      return "START";
    case ACTIVITY_TASK_SCHEDULED:
      return "ASCH";
    case ACTIVITY_TASK_COMPLETED:
      return "ACOM";
    case TIMER_STARTED:
      return "TSTA";
    case TIMER_FIRED:
      return "TFIR";
    case WORKFLOW_EXECUTION_SIGNALED:
      return "SIG";
    case WORKFLOW_EXECUTION_CANCEL_REQUESTED:
      return "CANC";
    case WORKFLOW_EXECUTION_TERMINATED:
      return "TERM";
    case WORKFLOW_EXECUTION_COMPLETED:
      return "DONE";
    default:
      return "?";
  }
}

std::string EventsString(const google::protobuf::RepeatedPtrField<HistoryEvent>& events) {
  std::vector<std::string> parts;
  for (const HistoryEvent& event : events) {
    std::string part = absl::StrFormat("%d@%d:%s", event.event_id(), event.version(),
                                       ShortType(event.event_type()));
    if (event.has_reapplied_from()) {
      absl::StrAppend(&part, absl::StrFormat("<-%s/%d@%d", event.reapplied_from().run_id(),
                                             event.reapplied_from().event_id(),
                                             event.reapplied_from().version()));
    }
    parts.push_back(std::move(part));
  }
  return absl::StrJoin(parts, " ");
}

std::string EventsString(const std::vector<HistoryEvent>& events) {
  google::protobuf::RepeatedPtrField<HistoryEvent> field(events.begin(), events.end());
  return EventsString(field);
}

// The branches of a run as sorted lists of (event id, version), comparable across clusters.
std::vector<std::vector<EventKey>> SortedBranches(const VersionHistories& histories) {
  std::vector<std::vector<EventKey>> branches;
  for (const VersionHistory& history : histories.histories()) {
    std::vector<EventKey> items;
    for (const VersionHistoryItem& item : history.items()) {
      items.emplace_back(item.event_id(), item.version());
    }
    branches.push_back(std::move(items));
  }
  std::sort(branches.begin(), branches.end());
  return branches;
}

// True when every event of `prefix` is on `branch` (with the same version).
bool IsPrefixOf(const VersionHistory& prefix, const VersionHistory& branch) {
  const int64_t last = LastEventId(prefix);
  if (last == 0 || last > LastEventId(branch)) return false;
  absl::StatusOr<VersionHistory> cut = TruncateHistory(branch, last);
  return cut.ok() && cut->SerializeAsString() == prefix.SerializeAsString();
}

class Simulation {
 public:
  Simulation(uint64_t seed, bool trace) : rng_(seed), trace_(trace) {
    num_clusters_ = rng_.Between(2, 3);
    increment_ = rng_.Percent(50) ? 10 : 100;
    num_runs_ = rng_.Between(1, 3);
    steps_ = rng_.Between(10, 60);
    for (int r = 0; r < num_runs_; ++r) {
      WorkflowKey key;
      key.set_namespace_id("ns");
      key.set_workflow_id("wf");
      key.set_run_id(absl::StrCat("run", r));
      keys_.push_back(std::move(key));
    }
    clusters_.resize(num_clusters_);
    for (int c = 0; c < num_clusters_; ++c) {
      clusters_[c].initial_version = c + 1;
      clusters_[c].view = View{.active = 0, .version = 1};
      clusters_[c].states.resize(num_runs_);
      clusters_[c].stores.resize(num_runs_);
    }
    step_ = -1;
    Log("case: %d clusters, increment %d, %d runs, %d steps; all views: c0 active at 1",
        num_clusters_, increment_, num_runs_, steps_);
  }

  // Runs the case; returns why it failed, or nullopt.
  std::optional<std::string> Run() {
    for (step_ = 0; step_ < steps_ && !failed_; ++step_) Step();
    if (!failed_) Heal();
    if (!failed_) CheckInvariants();
    if (failed_) return failure_;
    return std::nullopt;
  }

  const Counts& counts() const { return counts_; }
  std::string Trace() const { return absl::StrJoin(trace_lines_, "\n"); }
  std::string Dump() const {
    std::string out;
    for (int c = 0; c < num_clusters_; ++c) {
      const Cluster& cluster = clusters_[c];
      absl::StrAppendFormat(&out, "c%d view: c%d active at %d\n", c, cluster.view.active,
                            cluster.view.version);
      for (int r = 0; r < num_runs_; ++r) {
        if (!cluster.states[r].has_value()) continue;
        const WorkflowMutableState& state = *cluster.states[r];
        absl::StrAppendFormat(&out, "  run%d next=%d status=%s pending=%d current=%d:", r,
                              state.next_event_id(), WorkflowStatus_Name(state.status()),
                              state.reapply_pending(), state.version_histories().current_index());
        for (const VersionHistory& branch : state.version_histories().histories()) {
          absl::StrAppend(&out, " ", ItemsString(branch));
        }
        absl::StrAppend(&out, "\n    events:");
        for (const auto& [key, event] : cluster.stores[r]) {
          google::protobuf::RepeatedPtrField<HistoryEvent> one;
          *one.Add() = event;
          absl::StrAppend(&out, " ", EventsString(one));
        }
        absl::StrAppend(&out, "\n");
      }
      absl::StrAppendFormat(&out, "  parked=%d inbox=%d\n", cluster.parked.size(),
                            cluster.inbox.size());
    }
    return out;
  }

 private:
  template <typename... Args>
  void Log(const absl::FormatSpec<Args...>& format, const Args&... args) {
    if (!trace_) return;
    trace_lines_.push_back(step_ < 0        ? ""
                           : step_ < steps_ ? absl::StrFormat("%02d ", step_)
                                            : "h  ");
    absl::StrAppendFormat(&trace_lines_.back(), format, args...);
  }

  void Fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    failure_ = why;
    Log("FAIL: %s", why);
  }

  bool IsActive(int c) const {
    const Cluster& cluster = clusters_[c];
    return cluster.view.active == c &&
           OwnsVersion(cluster.view.version, cluster.initial_version, increment_);
  }

  std::optional<ActiveContext> ActiveContextFor(int c) {
    if (!IsActive(c)) return std::nullopt;
    return ActiveContext{.failover_version = clusters_[c].view.version, .now_unix_micros = ++now_};
  }

  int64_t HighestView() const {
    int64_t highest = 0;
    for (const Cluster& cluster : clusters_) highest = std::max(highest, cluster.view.version);
    return highest;
  }

  // ---- random phase -------------------------------------------------------------------------

  void Step() {
    const int roll = rng_.Uniform(100);
    if (roll < 30) {
      Write();
    } else if (roll < 37) {
      Failover(rng_.Uniform(num_clusters_));
    } else if (roll < 40) {
      Republish();
    } else if (roll < 43) {
      IdleRerequest();
    } else if (roll < 46) {
      DueSweep();
    } else {
      DeliverRandom();
    }
  }

  EventType RandomType() {
    const int roll = rng_.Uniform(200);
    if (roll < 72) return WORKFLOW_EXECUTION_SIGNALED;
    if (roll < 92) return WORKFLOW_EXECUTION_CANCEL_REQUESTED;
    if (roll < 116) return TIMER_STARTED;
    if (roll < 136) return TIMER_FIRED;
    if (roll < 166) return ACTIVITY_TASK_SCHEDULED;
    if (roll < 194) return ACTIVITY_TASK_COMPLETED;
    if (roll < 197) return WORKFLOW_EXECUTION_COMPLETED;  // rarely: a closed run takes nothing
    return WORKFLOW_EXECUTION_TERMINATED;
  }

  void Write() {
    std::vector<int> active;
    for (int c = 0; c < num_clusters_; ++c) {
      if (IsActive(c)) active.push_back(c);
    }
    if (active.empty()) return;
    const int c = active[rng_.Uniform(static_cast<int>(active.size()))];
    const int run = rng_.Uniform(num_runs_);
    Cluster& cluster = clusters_[c];
    WorkflowMutableState state =
        cluster.states[run].has_value() ? *cluster.states[run] : NewWorkflowState(keys_[run]);
    std::vector<HistoryEvent> events;
    const int count = rng_.Between(1, 3);
    for (int i = 0; i < count; ++i) {
      HistoryEvent event;
      event.set_event_id(state.next_event_id());
      event.set_version(cluster.view.version);
      event.set_event_time_unix_micros(++now_);
      event.set_event_type(event.event_id() == 1 ? WORKFLOW_EXECUTION_STARTED : RandomType());
      event.set_attributes(absl::StrCat("c", c, "#", ++write_serial_));
      if (absl::Status s = ApplyEventToState(state, event); !s.ok()) {
        ++counts_.refused_writes;
        Log("write c%d run%d at %d: refused (%s)", c, run, cluster.view.version, s.message());
        return;
      }
      const bool closes = IsTerminalEvent(event.event_type());
      events.push_back(std::move(event));
      if (closes) break;  // a client closes a run with the last event of its batch
    }
    ++counts_.writes;
    if (cluster.view.version < HighestView()) ++counts_.split_brain_writes;
    for (const HistoryEvent& event : events) {
      StoreEvent(c, run, event);
      if (IsReapplicable(event.event_type())) {
        ledger_.push_back({.run = run, .event_id = event.event_id(), .version = event.version()});
        ++counts_.ledger;
      }
    }
    cluster.states[run] = std::move(state);
    CheckState(c, run);
    if (trace_) {
      Log("write c%d run%d at %d: ok %s -> %s", c, run, cluster.view.version, EventsString(events),
          ItemsString(*CurrentBranch(cluster.states[run]->version_histories())));
    }
    Replicate(c, run, events);
  }

  void Failover(int c) {
    Cluster& cluster = clusters_[c];
    absl::StatusOr<int64_t> next =
        NextVersionFor(cluster.view.version, cluster.initial_version, increment_);
    if (!next.ok()) return Fail(absl::StrCat("NextVersionFor: ", next.status().message()));
    const bool owned = OwnsVersion(cluster.view.version, cluster.initial_version, increment_);
    if (!(*next > cluster.view.version || (*next == cluster.view.version && owned)) ||
        !OwnsVersion(*next, cluster.initial_version, increment_)) {
      return Fail(absl::StrFormat("NextVersionFor(%d, %d, %d) = %d", cluster.view.version,
                                  cluster.initial_version, increment_, *next));
    }
    ++counts_.failovers;
    cluster.view = View{.active = c, .version = *next};
    Log("failover c%d -> active at %d", c, *next);
    for (int other = 0; other < num_clusters_; ++other) {
      if (other == c) continue;
      if (rng_.Percent(25)) {
        MergeView(other, cluster.view);
        continue;
      }
      Message message;
      message.kind = MessageKind::kView;
      message.from = c;
      message.view = cluster.view;
      message.late = rng_.Percent(35);
      clusters_[other].inbox.push_back(std::move(message));
    }
    // The daemon sweeps on activation: at once, or a while later (writes and applies may come
    // first), or never if the cluster stops being active before it gets to it.
    cluster.sweep_due = true;
    if (rng_.Percent(50)) Sweep(c);
  }

  void DueSweep() {
    std::vector<int> due;
    for (int c = 0; c < num_clusters_; ++c) {
      if (clusters_[c].sweep_due) due.push_back(c);
    }
    if (!due.empty()) Sweep(due[rng_.Uniform(static_cast<int>(due.size()))]);
  }

  void MergeView(int c, const View& view) {
    if (view.version > clusters_[c].view.version) {
      clusters_[c].view = view;
      clusters_[c].sweep_due = false;  // a higher view names another cluster: no longer active
      Log("view c%d <- c%d active at %d", c, view.active, view.version);
    }
  }

  void Republish() {
    if (outbox_.empty()) return;
    const int index = rng_.Uniform(static_cast<int>(outbox_.size()));
    auto [destination, message] = std::move(outbox_[index]);
    outbox_.erase(outbox_.begin() + index);
    ++counts_.republished;
    Log("republish c%d -> c%d run%d [%d..]", message.from, destination, message.run,
        message.task.events(0).event_id());
    clusters_[destination].inbox.push_back(std::move(message));
  }

  void IdleRerequest() {
    std::vector<int> idle;
    for (int c = 0; c < num_clusters_; ++c) {
      if (!clusters_[c].parked.empty() && clusters_[c].inbox.empty()) idle.push_back(c);
    }
    if (idle.empty()) return;
    RerequestGaps(idle[rng_.Uniform(static_cast<int>(idle.size()))]);
  }

  // A lost task is permanently gone only if a later task of the same source and branch is on its
  // way (the receiver will see the gap); otherwise the source's outbox publishes it again.
  bool Superseded(const std::vector<Message>& inbox, const Message& lost) const {
    const HistoryEvent& last = lost.task.events(lost.task.events_size() - 1);
    for (const Message& m : inbox) {
      if (m.kind != MessageKind::kTask || m.from != lost.from || m.run != lost.run) continue;
      VersionHistory branch;
      *branch.mutable_items() = m.task.version_history_items();
      if (m.task.events(0).event_id() > last.event_id() &&
          ContainsEvent(branch, last.event_id(), last.version())) {
        return true;
      }
    }
    return false;
  }

  void DeliverRandom() {
    std::vector<int> busy;
    for (int c = 0; c < num_clusters_; ++c) {
      if (!clusters_[c].inbox.empty()) busy.push_back(c);
    }
    if (busy.empty()) return;
    const int d = busy[rng_.Uniform(static_cast<int>(busy.size()))];
    std::vector<Message>& inbox = clusters_[d].inbox;
    const int index = rng_.Uniform(static_cast<int>(inbox.size()));
    if (inbox[index].kind == MessageKind::kView && inbox[index].late && !rng_.Percent(20)) {
      return;  // held back
    }
    const int fate = rng_.Uniform(100);
    if (fate < 8) {
      ++counts_.duplicated_deliveries;
      Message copy = inbox[index];
      Log("deliver a duplicate to c%d", d);
      Deliver(d, copy);
      return;
    }
    Message message = std::move(inbox[index]);
    inbox.erase(inbox.begin() + index);
    if (fate < 16 && message.kind != MessageKind::kView) {
      if (message.kind == MessageKind::kTask && !message.resend_answer &&
          !Superseded(inbox, message)) {
        Log("delivery to c%d failed: the source will publish it again", d);
        outbox_.emplace_back(d, std::move(message));
      } else {
        ++counts_.lost;
        Log("lost a message to c%d", d);
      }
      return;
    }
    Deliver(d, message);
  }

  // ---- delivery and apply -------------------------------------------------------------------

  void Deliver(int d, const Message& message) {
    switch (message.kind) {
      case MessageKind::kView:
        MergeView(d, message.view);
        return;
      case MessageKind::kTask:
        ReceiveTask(d, message);
        return;
      case MessageKind::kResendRequest:
        AnswerResend(d, message);
        return;
    }
  }

  ApplyDecision Decide(int d, int run, const ReplicationTask& task) {
    Cluster& cluster = clusters_[d];
    const StoreReader reader(cluster.stores[run]);
    return DecideApply(cluster.states[run], task, reader, ActiveContextFor(d));
  }

  std::string TaskString(const ReplicationTask& task) const {
    return absl::StrFormat("%s items %s events %s", task.source_cluster(),
                           ItemsString(task.version_history_items()), EventsString(task.events()));
  }

  void ReceiveTask(int d, const Message& message) {
    const ApplyDecision decision = Decide(d, message.run, message.task);
    if (trace_) {
      Log("c%d <- run%d %s%s: %s %s", d, message.run, message.resend_answer ? "resent " : "",
          TaskString(message.task), ApplyActionName(decision.action), decision.reason);
    }
    switch (decision.action) {
      case ApplyAction::kApply:
        Commit(d, message.run, decision);
        RetryParked(d);
        return;
      case ApplyAction::kDuplicate:
        ++counts_.duplicates;
        return;
      case ApplyAction::kGap:
        ++counts_.gaps;
        clusters_[d].parked.push_back(
            Parked{.task = message.task, .from = message.from, .run = message.run});
        RequestResend(d, message.from, message.run, message.task, decision.expected_event_id);
        return;
      case ApplyAction::kInvalid:
      case ApplyAction::kReadError:
        return Fail(absl::StrFormat("c%d run%d: DecideApply returned %s (%s) for task %s", d,
                                    message.run, ApplyActionName(decision.action), decision.reason,
                                    TaskString(message.task)));
    }
  }

  void StoreEvent(int c, int run, const HistoryEvent& event) {
    EventStore& store = clusters_[c].stores[run];
    auto [it, inserted] = store.try_emplace({event.event_id(), event.version()}, event);
    if (inserted) return;
    // Nothing is applied twice with different content; and DecideApply's events_to_write are
    // "the task's new events": it never asks to write one again.
    Fail(absl::StrFormat("c%d run%d: event (%d, version %d) written again (%s): %s, stored %s", c,
                         run, event.event_id(), event.version(),
                         it->second.SerializeAsString() == event.SerializeAsString()
                             ? "same content"
                             : "DIFFERENT content",
                         event.ShortDebugString(), it->second.ShortDebugString()));
  }

  void Commit(int d, int run, const ApplyDecision& decision) {
    ++counts_.applies;
    for (const HistoryEvent& event : decision.events_to_write) StoreEvent(d, run, event);
    clusters_[d].states[run] = decision.new_state;
    CheckState(d, run);
    CheckReapplyBatch(d, run, decision.reapply.appended);
    if (decision.branch_change == BranchChange::kForked) ++counts_.forks;
    if (decision.branch_change == BranchChange::kExtendedOther) ++counts_.extended_other;
    if (decision.switched_branch) ++counts_.switches;
    counts_.reapply_dropped_closed += decision.reapply.dropped_closed;
    if (trace_ && (decision.switched_branch || decision.branch_change == BranchChange::kForked ||
                   !decision.reapply.appended.empty() || decision.reapply.dropped_closed > 0)) {
      Log("  c%d run%d: %s%s reapplied %s dropped_closed %d pending %d -> current %s", d, run,
          decision.branch_change == BranchChange::kForked ? "fork " : "",
          decision.switched_branch ? "switch" : "", EventsString(decision.reapply.appended),
          decision.reapply.dropped_closed, decision.new_state.reapply_pending(),
          ItemsString(*CurrentBranch(decision.new_state.version_histories())));
    }
    if (!decision.reapply.appended.empty()) {
      counts_.reapplied_copies += static_cast<int64_t>(decision.reapply.appended.size());
      Replicate(d, run, decision.reapply.appended);
    }
  }

  // Cheap checks after every apply: the current branch is the greatest, the state matches it.
  void CheckState(int c, int run) {
    const WorkflowMutableState& state = *clusters_[c].states[run];
    const VersionHistories& histories = state.version_histories();
    const VersionHistory* current = CurrentBranch(histories);
    if (current == nullptr || state.next_event_id() != LastEventId(*current) + 1) {
      return Fail(absl::StrFormat("c%d run%d: next_event_id %d does not follow the current branch",
                                  c, run, state.next_event_id()));
    }
    for (const VersionHistory& branch : histories.histories()) {
      if (absl::Status s = ValidateVersionHistory(branch); !s.ok()) {
        return Fail(
            absl::StrFormat("c%d run%d: branch %s: %s", c, run, ItemsString(branch), s.message()));
      }
      if (&branch != current && CompareBranches(*current, branch) <= 0) {
        return Fail(absl::StrFormat("c%d run%d: current branch %s does not beat %s", c, run,
                                    ItemsString(*current), ItemsString(branch)));
      }
    }
    // reapply_pending is exact: set iff losing branches hold input not on the current branch and
    // the run can still take it. (The final sweep would otherwise hide work the resolver forgot.)
    if (histories.histories_size() < 2 && !state.reapply_pending()) return;
    const StoreReader reader(clusters_[c].stores[run]);
    absl::StatusOr<std::vector<HistoryEvent>> left = FindEventsToReapply(state, reader);
    if (!left.ok()) {
      return Fail(
          absl::StrFormat("c%d run%d: FindEventsToReapply: %s", c, run, left.status().message()));
    }
    const bool closed =
        state.status() == WORKFLOW_STATUS_COMPLETED || state.status() == WORKFLOW_STATUS_TERMINATED;
    if (state.reapply_pending() != (!left->empty() && !closed)) {
      return Fail(absl::StrFormat(
          "c%d run%d: reapply_pending is %d but %d events are left to reapply (run %s)", c, run,
          state.reapply_pending(), left->size(), WorkflowStatus_Name(state.status())));
    }
  }

  // Terminations are reapplied after signals and cancel requests: if a batch closed the run with a
  // reapplied termination, all it left behind (undeliverable now) are terminations.
  void CheckReapplyBatch(int c, int run, const std::vector<HistoryEvent>& appended) {
    if (failed_ || appended.empty()) return;
    for (size_t i = 0; i + 1 < appended.size(); ++i) {
      if (IsTerminalEvent(appended[i].event_type())) {
        return Fail(absl::StrFormat("c%d run%d: reapplied events after a termination: %s", c, run,
                                    EventsString(appended)));
      }
    }
    if (!IsTerminalEvent(appended.back().event_type())) return;
    const StoreReader reader(clusters_[c].stores[run]);
    absl::StatusOr<std::vector<HistoryEvent>> left =
        FindEventsToReapply(*clusters_[c].states[run], reader);
    if (!left.ok()) return Fail(std::string(left.status().message()));
    for (const HistoryEvent& event : *left) {
      if (event.event_type() != WORKFLOW_EXECUTION_TERMINATED) {
        return Fail(absl::StrFormat(
            "c%d run%d: a reapplied termination closed the run before %s could be reapplied", c,
            run, EventsString(std::vector<HistoryEvent>{event})));
      }
    }
  }

  // `events` were just written by `c` at the end of run's current branch: publish them.
  void Replicate(int c, int run, const std::vector<HistoryEvent>& events) {
    ReplicationTask task;
    task.set_source_cluster(absl::StrCat("c", c));
    *task.mutable_workflow() = keys_[run];
    *task.mutable_version_history_items() =
        CurrentBranch(clusters_[c].states[run]->version_histories())->items();
    for (const HistoryEvent& event : events) *task.add_events() = event;
    for (int other = 0; other < num_clusters_; ++other) {
      if (other == c) continue;
      Message message;
      message.kind = MessageKind::kTask;
      message.from = c;
      message.run = run;
      message.task = task;
      clusters_[other].inbox.push_back(std::move(message));
    }
  }

  void RetryParked(int d) {
    std::vector<Parked>& parked = clusters_[d].parked;
    bool progress = true;
    while (progress && !failed_) {
      progress = false;
      for (size_t i = 0; i < parked.size() && !failed_;) {
        const ApplyDecision decision = Decide(d, parked[i].run, parked[i].task);
        if (decision.action == ApplyAction::kGap) {
          ++i;
          continue;
        }
        Parked entry = std::move(parked[i]);
        parked.erase(parked.begin() + static_cast<std::ptrdiff_t>(i));
        if (trace_) {
          Log("c%d retry parked run%d %s: %s %s", d, entry.run, TaskString(entry.task),
              ApplyActionName(decision.action), decision.reason);
        }
        if (decision.action == ApplyAction::kDuplicate) {
          ++counts_.duplicates;
          continue;
        }
        if (decision.action != ApplyAction::kApply) {
          return Fail(absl::StrFormat("c%d run%d: retrying a parked task: %s (%s) for task %s", d,
                                      entry.run, ApplyActionName(decision.action), decision.reason,
                                      TaskString(entry.task)));
        }
        Commit(d, entry.run, decision);
        progress = true;
        break;
      }
    }
  }

  void RequestResend(int d, int source, int run, const ReplicationTask& task,
                     int64_t expected_event_id) {
    Message request;
    request.kind = MessageKind::kResendRequest;
    request.from = d;
    request.run = run;
    *request.branch.mutable_items() = task.version_history_items();
    request.first_event_id = expected_event_id;
    request.next_event_id = task.events(0).event_id();
    ++counts_.resend_requests;
    Log("c%d -> c%d resend request run%d [%d, %d) of %s", d, source, run, expected_event_id,
        request.next_event_id, trace_ ? ItemsString(request.branch) : "");
    clusters_[source].inbox.push_back(std::move(request));
  }

  // Resends [first, next) of the requested branch from this cluster's store, in random chunks.
  void AnswerResend(int s, const Message& request) {
    const EventStore& store = clusters_[s].stores[request.run];
    std::vector<HistoryEvent> events;
    for (int64_t id = request.first_event_id; id < request.next_event_id; ++id) {
      absl::StatusOr<int64_t> version = VersionOfEvent(request.branch, id);
      if (!version.ok()) {
        return Fail(absl::StrFormat("resend request to c%d for event %d outside the branch %s", s,
                                    id, ItemsString(request.branch)));
      }
      auto it = store.find({id, *version});
      if (it == store.end()) {
        return Fail(absl::StrFormat(
            "c%d cannot answer a resend of run%d: event (%d, version %d) of a branch it "
            "replicated is not in its store",
            s, request.run, id, *version));
      }
      events.push_back(it->second);
    }
    ++counts_.resend_answers;
    size_t begin = 0;
    while (begin < events.size()) {
      size_t end = begin + 1;
      while (end < events.size() && !rng_.Percent(35)) ++end;
      ReplicationTask task;
      task.set_source_cluster(absl::StrCat("c", s));
      *task.mutable_workflow() = keys_[request.run];
      absl::StatusOr<VersionHistory> items =
          TruncateHistory(request.branch, events[end - 1].event_id());
      if (!items.ok()) return Fail(absl::StrCat("TruncateHistory: ", items.status().message()));
      *task.mutable_version_history_items() = items->items();
      for (size_t i = begin; i < end; ++i) *task.add_events() = events[i];
      Message answer;
      answer.kind = MessageKind::kTask;
      answer.from = s;
      answer.run = request.run;
      answer.resend_answer = true;
      answer.task = std::move(task);
      clusters_[request.from].inbox.push_back(std::move(answer));
      begin = end;
    }
    Log("c%d answers c%d's resend of run%d [%d, %d)", s, request.from, request.run,
        request.first_event_id, request.next_event_id);
  }

  // Asks again for what parked tasks still miss. Returns the number of requests sent.
  int RerequestGaps(int d) {
    int sent = 0;
    const std::vector<Parked>& parked = clusters_[d].parked;
    for (size_t i = 0; i < parked.size() && !failed_;) {
      const ApplyDecision decision = Decide(d, parked[i].run, parked[i].task);
      if (decision.action == ApplyAction::kGap) {
        RequestResend(d, parked[i].from, parked[i].run, parked[i].task, decision.expected_event_id);
        ++sent;
        ++i;
        continue;
      }
      // Parked tasks are retried after every apply, and only applies change what they need.
      Fail(absl::StrFormat("c%d: parked task %s is no longer a gap but %s (%s)", d,
                           TaskString(parked[i].task), ApplyActionName(decision.action),
                           decision.reason));
      break;
    }
    return sent;
  }

  // The namespace became (or is) active here: reapply whatever losing branches left.
  void Sweep(int c) {
    const std::optional<ActiveContext> active = ActiveContextFor(c);
    if (!active.has_value()) return Fail(absl::StrFormat("sweep on c%d, which is not active", c));
    Cluster& cluster = clusters_[c];
    cluster.sweep_due = false;
    for (int run = 0; run < num_runs_ && !failed_; ++run) {
      if (!cluster.states[run].has_value()) continue;
      WorkflowMutableState state = *cluster.states[run];
      const StoreReader reader(cluster.stores[run]);
      absl::StatusOr<ReapplyOutcome> outcome = Reapply(state, reader, active);
      if (!outcome.ok()) {
        return Fail(
            absl::StrFormat("sweep c%d run%d: Reapply: %s", c, run, outcome.status().message()));
      }
      for (const HistoryEvent& event : outcome->appended) StoreEvent(c, run, event);
      cluster.states[run] = std::move(state);
      CheckState(c, run);
      CheckReapplyBatch(c, run, outcome->appended);
      counts_.reapply_dropped_closed += outcome->dropped_closed;
      if (trace_ && (!outcome->appended.empty() || outcome->dropped_closed > 0)) {
        Log("sweep c%d run%d at %d: reapplied %s dropped_closed %d", c, run,
            active->failover_version, EventsString(outcome->appended), outcome->dropped_closed);
      }
      if (outcome->appended.empty()) continue;
      counts_.reapplied_copies += static_cast<int64_t>(outcome->appended.size());
      counts_.sweep_copies += static_cast<int64_t>(outcome->appended.size());
      Replicate(c, run, outcome->appended);
    }
  }

  // ---- heal ---------------------------------------------------------------------------------

  void Heal() {
    Log("-- heal");
    View best = clusters_[0].view;
    for (const Cluster& cluster : clusters_) {
      if (cluster.view.version > best.version) best = cluster.view;
      for (const Message& m : cluster.inbox) {
        if (m.kind == MessageKind::kView && m.view.version > best.version) best = m.view;
      }
    }
    for (int c = 0; c < num_clusters_; ++c) {
      MergeView(c, best);
      std::vector<Message>& inbox = clusters_[c].inbox;
      inbox.erase(std::remove_if(inbox.begin(), inbox.end(),
                                 [](const Message& m) { return m.kind == MessageKind::kView; }),
                  inbox.end());
    }
    for (auto& [destination, message] : outbox_) {
      ++counts_.republished;
      clusters_[destination].inbox.push_back(std::move(message));
    }
    outbox_.clear();
    final_active_ = best.active;
    Drain();
    if (failed_) return;
    Log("-- sweep on c%d", final_active_);
    Sweep(final_active_);
    Drain();
  }

  // Delivers everything, in order per destination and without loss, then re-requests what parked
  // tasks still miss, until nothing is in flight and nothing is parked.
  void Drain() {
    int deliveries = 0;
    for (int round = 0; !failed_; ++round) {
      while (!failed_) {
        std::vector<int> busy;
        for (int c = 0; c < num_clusters_; ++c) {
          if (!clusters_[c].inbox.empty()) busy.push_back(c);
        }
        if (busy.empty()) break;
        const int d = busy[rng_.Uniform(static_cast<int>(busy.size()))];
        Message message = std::move(clusters_[d].inbox.front());
        clusters_[d].inbox.erase(clusters_[d].inbox.begin());
        Deliver(d, message);
        if (++deliveries > kMaxHealDeliveries) {
          return Fail(absl::StrFormat("no quiescence after %d deliveries", deliveries));
        }
      }
      bool parked = false;
      for (const Cluster& cluster : clusters_) parked = parked || !cluster.parked.empty();
      if (!parked || failed_) return;
      if (round >= kMaxHealRounds) {
        return Fail(absl::StrFormat("tasks still parked after %d resend rounds", round));
      }
      int sent = 0;
      for (int c = 0; c < num_clusters_; ++c) sent += RerequestGaps(c);
      if (sent == 0 && !failed_) Fail("parked tasks but nothing to ask for");
    }
  }

  // ---- invariants ---------------------------------------------------------------------------

  void CheckInvariants() {
    for (int run = 0; run < num_runs_ && !failed_; ++run) CheckRun(run);
    if (failed_) return;
    // Sweeping again finds nothing: reapplication is done exactly once.
    const std::optional<ActiveContext> active = ActiveContextFor(final_active_);
    for (int run = 0; run < num_runs_ && active.has_value(); ++run) {
      if (!clusters_[final_active_].states[run].has_value()) continue;
      WorkflowMutableState state = *clusters_[final_active_].states[run];
      const StoreReader reader(clusters_[final_active_].stores[run]);
      absl::StatusOr<ReapplyOutcome> outcome = Reapply(state, reader, active);
      if (!outcome.ok() || !outcome->appended.empty() || outcome->pending) {
        return Fail(absl::StrFormat(
            "run%d: a second sweep on c%d still reapplies %s (%s)", run, final_active_,
            outcome.ok() ? EventsString(outcome->appended) : "", outcome.status().message()));
      }
    }
  }

  void CheckRun(int run) {
    int have = 0;
    for (const Cluster& cluster : clusters_) have += cluster.states[run].has_value() ? 1 : 0;
    if (have == 0) return;
    if (have != num_clusters_) {
      return Fail(absl::StrFormat("run%d exists on %d of %d clusters", run, have, num_clusters_));
    }
    const WorkflowMutableState& reference = *clusters_[0].states[run];
    const std::vector<std::vector<EventKey>> reference_branches =
        SortedBranches(reference.version_histories());
    const VersionHistory& reference_current = *CurrentBranch(reference.version_histories());
    for (int c = 0; c < num_clusters_ && !failed_; ++c) {
      const WorkflowMutableState& state = *clusters_[c].states[run];
      const EventStore& store = clusters_[c].stores[run];
      const VersionHistories& histories = state.version_histories();
      const VersionHistory* current = CurrentBranch(histories);
      if (current == nullptr) return Fail(absl::StrFormat("c%d run%d: no current branch", c, run));
      // (1) same branches, current branch, events, next event id and status everywhere.
      if (SortedBranches(histories) != reference_branches) {
        return Fail(absl::StrFormat("run%d: c%d and c0 hold different branches", run, c));
      }
      if (current->SerializeAsString() != reference_current.SerializeAsString()) {
        return Fail(absl::StrFormat("run%d: current branch %s on c%d but %s on c0", run,
                                    ItemsString(*current), c, ItemsString(reference_current)));
      }
      if (state.next_event_id() != reference.next_event_id() ||
          state.status() != reference.status()) {
        return Fail(absl::StrFormat("run%d: c%d has next %d status %s, c0 next %d status %s", run,
                                    c, state.next_event_id(), WorkflowStatus_Name(state.status()),
                                    reference.next_event_id(),
                                    WorkflowStatus_Name(reference.status())));
      }
      const EventStore& reference_store = clusters_[0].stores[run];
      if (store.size() != reference_store.size()) {
        return Fail(absl::StrFormat("run%d: c%d stores %d events, c0 %d", run, c, store.size(),
                                    reference_store.size()));
      }
      for (const auto& [key, event] : store) {
        auto it = reference_store.find(key);
        if (it == reference_store.end() ||
            it->second.SerializeAsString() != event.SerializeAsString()) {
          return Fail(absl::StrFormat("run%d: event (%d, version %d) differs between c%d and c0",
                                      run, key.first, key.second, c));
        }
      }
      // (5) nothing left to reapply.
      if (state.reapply_pending()) {
        return Fail(absl::StrFormat("run%d: c%d still has reapply_pending", run, c));
      }
      // (4) every branch is valid, fully stored, not a prefix of another; the current one wins.
      for (int i = 0; i < histories.histories_size(); ++i) {
        const VersionHistory& branch = histories.histories(i);
        if (absl::Status s = ValidateVersionHistory(branch); !s.ok()) {
          return Fail(absl::StrFormat("c%d run%d: branch %s: %s", c, run, ItemsString(branch),
                                      s.message()));
        }
        for (int64_t id = 1; id <= LastEventId(branch); ++id) {
          if (!store.contains({id, *VersionOfEvent(branch, id)})) {
            return Fail(absl::StrFormat("c%d run%d: event %d of branch %s is not stored", c, run,
                                        id, ItemsString(branch)));
          }
        }
        for (int j = 0; j < histories.histories_size(); ++j) {
          if (i == j) continue;
          if (IsPrefixOf(branch, histories.histories(j))) {
            return Fail(absl::StrFormat("c%d run%d: branch %s is a prefix of branch %s", c, run,
                                        ItemsString(branch), ItemsString(histories.histories(j))));
          }
          if (j != histories.current_index() && i == histories.current_index() &&
              CompareBranches(branch, histories.histories(j)) <= 0) {
            return Fail(absl::StrFormat("c%d run%d: current branch %s does not beat %s", c, run,
                                        ItemsString(branch), ItemsString(histories.histories(j))));
          }
        }
      }
    }
    if (failed_) return;
    CheckCurrentBranch(run);
    const WorkflowMutableState& state = *clusters_[0].states[run];
    if (state.version_histories().histories_size() >= 3) ++counts_.runs_with_three_branches;
    for (const auto& [key, event] : clusters_[0].stores[run]) {
      if (event.has_reapplied_from() &&
          !ContainsEvent(*CurrentBranch(state.version_histories()), key.first, key.second)) {
        ++counts_.losing_copies;
      }
    }
  }

  void CheckCurrentBranch(int run) {
    const WorkflowMutableState& state = *clusters_[0].states[run];
    const EventStore& store = clusters_[0].stores[run];
    const VersionHistory& current = *CurrentBranch(state.version_histories());
    if (state.next_event_id() != LastEventId(current) + 1) {
      return Fail(absl::StrFormat("run%d: next_event_id %d but the current branch ends at %d", run,
                                  state.next_event_id(), LastEventId(current)));
    }
    // (4) contiguous events 1..next-1 with the versions the history gives; state derived from them.
    std::vector<HistoryEvent> events;
    std::map<std::tuple<std::string, int64_t, int64_t>, int64_t> origins;  // -> event id
    for (int64_t id = 1; id < state.next_event_id(); ++id) {
      const int64_t version = *VersionOfEvent(current, id);
      auto it = store.find({id, version});
      if (it == store.end() || it->second.event_id() != id || it->second.version() != version) {
        return Fail(
            absl::StrFormat("run%d: event %d (version %d) of the current branch is "
                            "missing or mislabelled",
                            run, id, version));
      }
      // The run's rules hold on the branch: one start, first; nothing after a close.
      if ((id == 1) != (it->second.event_type() == WORKFLOW_EXECUTION_STARTED) ||
          (!events.empty() && IsTerminalEvent(events.back().event_type()))) {
        return Fail(absl::StrFormat("run%d: event %d (%s) breaks the run's rules", run, id,
                                    EventType_Name(it->second.event_type())));
      }
      events.push_back(it->second);
      // (3) no origin twice on the current branch.
      const EventOrigin origin = OriginOf(keys_[run].run_id(), it->second);
      auto [at, inserted] =
          origins.try_emplace({origin.run_id(), origin.event_id(), origin.version()}, id);
      if (!inserted) {
        return Fail(absl::StrFormat(
            "run%d: origin %s/%d@%d is on the current branch twice (events %d and %d)", run,
            origin.run_id(), origin.event_id(), origin.version(), at->second, id));
      }
    }
    // Copies are of outside input only, and faithful to their origin (an original event).
    for (const auto& [key, event] : store) {
      if (!event.has_reapplied_from()) continue;
      const EventOrigin& origin = event.reapplied_from();
      auto it = store.find({origin.event_id(), origin.version()});
      if (!IsReapplicable(event.event_type()) || origin.run_id() != keys_[run].run_id() ||
          it == store.end() || it->second.has_reapplied_from() ||
          it->second.event_type() != event.event_type() ||
          it->second.attributes() != event.attributes()) {
        return Fail(absl::StrFormat("run%d: copy %s does not match its origin", run,
                                    event.ShortDebugString()));
      }
    }
    WorkflowMutableState rebuilt = state;
    if (absl::Status s = RebuildFromCurrentBranch(rebuilt, events); !s.ok()) {
      return Fail(
          absl::StrFormat("run%d: rebuilding from the current branch: %s", run, s.message()));
    }
    if (rebuilt.status() != state.status() || rebuilt.next_event_id() != state.next_event_id()) {
      return Fail(absl::StrFormat("run%d: state does not match its current branch", run));
    }
    // (2) every acknowledged reapplicable event is on the current branch, unless the run closed.
    const bool closed =
        state.status() == WORKFLOW_STATUS_COMPLETED || state.status() == WORKFLOW_STATUS_TERMINATED;
    for (const LedgerEntry& entry : ledger_) {
      if (entry.run != run) continue;
      if (origins.contains({keys_[run].run_id(), entry.event_id, entry.version})) continue;
      if (closed) {
        ++counts_.ledger_dropped_closed;
        continue;
      }
      return Fail(absl::StrFormat(
          "run%d: acknowledged event (%d, version %d) is not on the final current branch %s "
          "(run %s)",
          run, entry.event_id, entry.version, ItemsString(current),
          WorkflowStatus_Name(state.status())));
    }
  }

  Rng rng_;
  const bool trace_;
  int num_clusters_ = 0;
  int64_t increment_ = 0;
  int num_runs_ = 0;
  int steps_ = 0;
  int step_ = 0;  // steps_ once healing
  std::vector<WorkflowKey> keys_;
  std::vector<Cluster> clusters_;
  std::vector<std::pair<int, Message>> outbox_;  // failed deliveries, published again later
  std::vector<LedgerEntry> ledger_;
  int final_active_ = 0;
  int64_t now_ = 0;
  int64_t write_serial_ = 0;
  Counts counts_;
  bool failed_ = false;
  std::string failure_;
  std::vector<std::string> trace_lines_;
};

std::optional<int64_t> EnvInt(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  int64_t parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed)) {
    ADD_FAILURE() << name << "=" << value << " is not a number";
    return std::nullopt;
  }
  return parsed;
}

std::optional<uint64_t> EnvSeed(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  uint64_t parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed)) {
    ADD_FAILURE() << name << "=" << value << " is not an unsigned number";
    return std::nullopt;
  }
  return parsed;
}

struct Totals {
  int64_t cases = 0;
  int64_t with_fork = 0;
  int64_t with_switch = 0;
  int64_t with_reapply = 0;
  int64_t with_sweep_reapply = 0;
  int64_t with_resend = 0;
  int64_t with_gap = 0;
  int64_t with_loss = 0;
  int64_t with_split_brain = 0;
  int64_t with_dropped_closed = 0;
  int64_t with_three_branches = 0;
  int64_t with_losing_copy = 0;
  Counts sum;

  void Add(const Counts& c) {
    ++cases;
    with_fork += c.forks > 0;
    with_switch += c.switches > 0;
    with_reapply += c.reapplied_copies > 0;
    with_sweep_reapply += c.sweep_copies > 0;
    with_resend += c.resend_answers > 0;
    with_gap += c.gaps > 0;
    with_loss += c.lost > 0;
    with_split_brain += c.split_brain_writes > 0;
    with_dropped_closed += c.ledger_dropped_closed > 0 || c.reapply_dropped_closed > 0;
    with_three_branches += c.runs_with_three_branches > 0;
    with_losing_copy += c.losing_copies > 0;
    sum.writes += c.writes;
    sum.refused_writes += c.refused_writes;
    sum.split_brain_writes += c.split_brain_writes;
    sum.ledger += c.ledger;
    sum.failovers += c.failovers;
    sum.applies += c.applies;
    sum.forks += c.forks;
    sum.switches += c.switches;
    sum.extended_other += c.extended_other;
    sum.duplicates += c.duplicates;
    sum.gaps += c.gaps;
    sum.resend_requests += c.resend_requests;
    sum.resend_answers += c.resend_answers;
    sum.lost += c.lost;
    sum.republished += c.republished;
    sum.duplicated_deliveries += c.duplicated_deliveries;
    sum.reapplied_copies += c.reapplied_copies;
    sum.sweep_copies += c.sweep_copies;
    sum.reapply_dropped_closed += c.reapply_dropped_closed;
    sum.ledger_dropped_closed += c.ledger_dropped_closed;
  }

  std::string Summary(double seconds) const {
    auto pct = [this](int64_t n) { return cases == 0 ? 0.0 : 100.0 * n / cases; };
    return absl::StrFormat(
        "convergence property: %d cases in %.1f s\n"
        "  cases with: fork %d (%.1f%%), branch switch %d (%.1f%%), reapplication %d (%.1f%%; "
        "by a sweep %d), resend %d (%.1f%%), gap %d, loss %d, split-brain write %d (%.1f%%), "
        "dropped_closed %d (%.1f%%), a run with 3+ branches %d, a copy on a losing branch %d\n"
        "  totals: writes %d (refused %d, split-brain %d), ledger %d, failovers %d, applies %d, "
        "forks %d, switches %d, extended non-current %d, duplicates %d, gaps %d, resend "
        "requests %d / answers %d, lost %d, republished %d, duplicated deliveries %d, "
        "reapplied copies %d (sweep %d), dropped_closed %d reapply / %d ledger\n",
        cases, seconds, with_fork, pct(with_fork), with_switch, pct(with_switch), with_reapply,
        pct(with_reapply), with_sweep_reapply, with_resend, pct(with_resend), with_gap, with_loss,
        with_split_brain, pct(with_split_brain), with_dropped_closed, pct(with_dropped_closed),
        with_three_branches, with_losing_copy, sum.writes, sum.refused_writes,
        sum.split_brain_writes, sum.ledger, sum.failovers, sum.applies, sum.forks, sum.switches,
        sum.extended_other, sum.duplicates, sum.gaps, sum.resend_requests, sum.resend_answers,
        sum.lost, sum.republished, sum.duplicated_deliveries, sum.reapplied_copies,
        sum.sweep_copies, sum.reapply_dropped_closed, sum.ledger_dropped_closed);
  }
};

std::string ReplayHint(uint64_t seed) {
  return absl::StrFormat("replay: XDC_PROPERTY_SEED=%d ./convergence_test", seed);
}

TEST(ConvergencePropertyTest, ClustersConvergeWithoutLosingAcknowledgedInput) {
  if (std::optional<uint64_t> seed = EnvSeed("XDC_PROPERTY_SEED"); seed.has_value()) {
    Simulation simulation(*seed, /*trace=*/true);
    const std::optional<std::string> failure = simulation.Run();
    const char* trace = std::getenv("XDC_PROPERTY_TRACE");
    if (failure.has_value() || (trace != nullptr && std::string(trace) == "1")) {
      std::printf("%s\n%s", simulation.Trace().c_str(), simulation.Dump().c_str());
    }
    Totals totals;
    totals.Add(simulation.counts());
    std::printf("%s", totals.Summary(0).c_str());
    EXPECT_FALSE(failure.has_value()) << "seed " << *seed << ": " << failure.value_or("");
    return;
  }
  const int64_t cases = EnvInt("XDC_PROPERTY_CASES").value_or(kDefaultCases);
  const uint64_t base_seed = EnvSeed("XDC_PROPERTY_BASE_SEED").value_or(kDefaultBaseSeed);
  Totals totals;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < cases; ++i) {
    uint64_t mix = base_seed + static_cast<uint64_t>(i);
    const uint64_t seed = SplitMix64(mix);
    Simulation simulation(seed, /*trace=*/false);
    const std::optional<std::string> failure = simulation.Run();
    totals.Add(simulation.counts());
    if (failure.has_value()) {
      Simulation replay(seed, /*trace=*/true);
      (void)replay.Run();
      ADD_FAILURE() << "case " << i << " (seed " << seed << ") failed: " << *failure
                    << "\n--- trace\n"
                    << replay.Trace() << "\n--- final state\n"
                    << replay.Dump() << ReplayHint(seed);
      break;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s", totals.Summary(seconds).c_str());
  if (totals.cases < 10000 || ::testing::Test::HasFailure()) return;
  // A property test that never forks proves nothing: check it exercises what it claims.
  auto at_least = [&](int64_t n, double percent, const char* what) {
    EXPECT_GE(100.0 * n / totals.cases, percent) << "too few cases with " << what;
  };
  at_least(totals.with_fork, 20, "forks");
  at_least(totals.with_switch, 10, "branch switches");
  at_least(totals.with_reapply, 10, "reapplications");
  at_least(totals.with_resend, 10, "resends");
  at_least(totals.with_split_brain, 10, "split-brain writes");
  at_least(totals.with_dropped_closed, 0.5, "dropped_closed");
}

}  // namespace
}  // namespace xdc
