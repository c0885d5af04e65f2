// The chaos suite's load: one writer thread that appends events and sends signals to a set of
// workflows on whichever cluster it believes is active for the namespace, and records every
// acknowledged write in a client-side ledger (what a user was promised; chaos/checker.h proves
// it afterwards).
//
// Behaviour, as a well-behaved client of the API (docs/api.md):
// - It writes to one cluster, the one it believes active. A 409 that names another
//   `active_cluster` moves it there. A retryable 503 (a handover) is retried on the same cluster
//   after `retry_after_ms`. Refusals are not acknowledgements.
// - A request without an answer (connection refused or lost, timeout) is not acknowledged: its
//   outcome is unknown. Before the workload writes that workflow again it re-reads the
//   workflow's next event id (and current run) from the cluster. After
//   kTransportErrorsBeforeProbing such errors in a row it tries the next cluster of the list,
//   which either takes the write or names the active cluster.
// - A 409 without `active_cluster` (a stale `expected_next_event_id`, a closed run, or a run that
//   already has events of a newer version than the cluster's namespace record) makes it re-read
//   too. A workflow whose current run was closed (by another client) gets a new run.
// - Every attempt carries a new request id, in the event's attributes (appends) or the signal's
//   input, behind kRequestIdMarker, so the checker finds the write on any branch and recognises
//   reapplied copies. A request id is never sent twice, so a duplicate on a branch is the
//   product's doing, never the client's retry.
// - During a split brain (a forced failover while partitioned) the old active may still accept
//   writes: those are real acknowledgements, recorded with the cluster and version that gave
//   them.
//
// Each workflow's first write is an append of WORKFLOW_EXECUTION_STARTED (event 1); later writes
// are signals (share `signal_fraction`) or appends of one activity or timer event. No write
// closes a run, so a signal always has a run to go to.
//
// Thread-safety: Start/Stop from one controlling thread; Ledger(), stats() and active() from any
// thread. The writer thread owns the per-workflow state and the HTTP clients.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"

namespace xdc::chaos {

// Precedes the request id in an append's event attributes and in a signal's input.
inline constexpr absl::string_view kRequestIdMarker = "xdc-chaos-request:";
// The signal name the workload sends.
inline constexpr absl::string_view kSignalName = "chaos";

struct AckedWrite {
  enum class Kind { kAppend, kSignal };
  Kind kind = Kind::kAppend;
  std::string workflow_id, run_id;
  int64_t event_id = 0;    // the id the acknowledging cluster gave the event
  int64_t version = 0;     // the failover version it was written at
  std::string cluster;     // the cluster that acknowledged it
  std::string request_id;  // unique per write, in the event payload / signal input
  int64_t acked_at_micros = 0;
};

[[nodiscard]] absl::string_view KindName(AckedWrite::Kind kind);

// The request id a workload put in `event` (its attributes, or for a signal the input of its
// SignalAttributes), or nullopt when the event carries none.
[[nodiscard]] std::optional<std::string> RequestIdOf(const HistoryEvent& event);

// Percent-encodes `value` for a URL query component.
[[nodiscard]] std::string QueryEscape(absl::string_view value);

struct WorkloadOptions {
  std::string namespace_name = "orders";
  int workflows = 32;
  double signal_fraction = 0.25;  // share of writes that are signals
  int rate_per_second = 0;        // 0: as fast as acknowledgements come (closed loop)
  uint64_t seed = 1;              // which workflow/kind is chosen next
  std::string bearer_token;       // sent on every POST when non-empty
  // Workflow ids are "<workflow_prefix>-NNNNNN". Two workloads with the same prefix write the
  // same workflows (e.g. one per side of a split brain).
  std::string workflow_prefix = "chaos";
  // Request ids are "<writer_id>-<sequence>". Empty: a random id, so that ledgers of several
  // workloads can be merged.
  std::string writer_id;
  // Bound on one request/response exchange; past it the outcome is unknown.
  std::chrono::milliseconds request_timeout{5000};
};

class Workload {
 public:
  using AddressOf = std::function<std::string(const std::string& cluster)>;  // "" while down

  // Backoff after a request without an answer, or to a cluster that is down.
  static constexpr std::chrono::milliseconds kTransportBackoff{20};
  // Backoff after a refusal that gives no hint (409 without active cluster, 503 not retryable).
  static constexpr std::chrono::milliseconds kRefusedBackoff{20};
  // Upper bound on a retryable refusal's `retry_after_ms` that the workload honours.
  static constexpr std::chrono::milliseconds kMaxRetryAfter{2000};
  // Transport errors in a row on one cluster before the next cluster of the list is tried.
  static constexpr int kTransportErrorsBeforeProbing = 10;

  Workload(WorkloadOptions options, std::vector<std::string> clusters, std::string initial_active,
           AddressOf address_of);
  ~Workload();  // stops
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  void Start();                               // one writer thread; at most once
  void Stop() ABSL_LOCKS_EXCLUDED(stop_mu_);  // joins; idempotent

  std::vector<AckedWrite> Ledger() const;  // thread-safe snapshot, in acknowledgement order
  struct Stats {
    int64_t acked = 0;             // = Ledger().size()
    int64_t refused = 0;           // 409/503 answers: not applied
    int64_t unknown_outcome = 0;   // sent, but no answer: maybe applied, never acknowledged
    int64_t transport_errors = 0;  // no connection (or no address): not sent
    int64_t unexpected = 0;        // answers the workload does not expect (400, 401, 404, 500)
    std::string last_unexpected;   // the last of those, for the report
  };
  Stats stats() const;
  std::string active() const;  // the cluster it currently writes to
  const std::string& writer_id() const { return writer_id_; }

 private:
  // What the writer knows of one workflow.
  struct WorkflowState {
    bool known = false;  // false: re-read before writing (never read, or last outcome unknown)
    std::string run_id;  // empty: no run yet
    int64_t next_event_id = 1;
  };
  enum class Outcome { kAcked, kRetry };

  void Run() ABSL_LOCKS_EXCLUDED(stop_mu_);
  // One write to `workflow` (re-reading it first when needed).
  void WriteOnce(int index);
  bool ReadWorkflow(const std::string& workflow_id, WorkflowState& state);
  void HandleTransportError(const absl::Status& status, WorkflowState& state);
  void HandleRefusal(const HttpResult& result, WorkflowState& state);
  void RecordAck(AckedWrite::Kind kind, const std::string& workflow_id, const std::string& cluster,
                 const std::string& request_id, const AppendResponse& response);
  void NoteUnexpected(const std::string& what);
  // Sleeps up to `duration`; false when Stop() was called.
  bool Pause(std::chrono::milliseconds duration) ABSL_LOCKS_EXCLUDED(stop_mu_);
  // A client for `cluster`'s current address, or nullptr while it has none.
  HttpClient* ClientFor(const std::string& cluster);
  void SetActive(std::string cluster);
  std::string NextRequestId();
  std::string WorkflowId(int index) const;

  const WorkloadOptions options_;
  const std::vector<std::string> clusters_;
  const AddressOf address_of_;
  const std::string writer_id_;

  // Owned by the writer thread.
  std::mt19937_64 random_;
  std::vector<WorkflowState> workflows_;
  std::map<std::string, std::pair<std::string, std::unique_ptr<HttpClient>>> clients_;
  int64_t sequence_ = 0;
  int transport_errors_in_a_row_ = 0;

  std::thread thread_;
  absl::Mutex stop_mu_;  // waits are Mutex::Await*: setting stopping_ wakes them
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;

  mutable absl::Mutex mu_;
  std::string active_ ABSL_GUARDED_BY(mu_);
  std::vector<AckedWrite> ledger_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace xdc::chaos
