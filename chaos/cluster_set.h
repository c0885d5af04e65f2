// N xdcd processes (east, west[, north]) on one Kafka broker, as the chaos runner drives them:
// written configs, start, SIGKILL and restart on the same data dir, SIGSTOP/SIGCONT, fault
// points armed and disarmed over each daemon's HTTP API, the namespace registered, forced
// failovers and graceful handovers through the API, and each cluster's current HTTP address.
//
// Contract:
//   - Create() writes <work_dir>/<name>.conf for every cluster (the shape tests/process_clusters.h
//     uses: shard_count, failover_version_increment 100, initial_failover_version = position + 1,
//     http on 127.0.0.1:0, the given bootstrap and topic prefix) and starts nothing.
//   - Start(name) runs `xdcd --config <name>.conf` with XDC_ENABLE_FAULT_POINTS=1 (when enabled),
//     output appended to <work_dir>/<name>.log, and returns once it printed its HTTP address
//     and "xdcd: ready". A restart listens on a new port; address() follows. Fault points the
//     runner had armed on that cluster (and not disarmed) are armed again after a restart, since
//     a new process starts with none.
//   - address(name) is "" while the cluster is not running (never started, killed, or it exited),
//     which the workload treats as "down".
//   - Every HTTP call is bounded by kControlRequestTimeout; every wait has a deadline.
//   - The destructor SIGCONTs and SIGKILLs whatever still runs (ChildProcess does the killing).
//
// Thread-safety: one thread (the runner) calls every method except address(), which any thread
// may call (the workload's writer threads do).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chaos/process.h"
#include "protocol/xdc.pb.h"

namespace xdc::chaos {

struct ClusterSetOptions {
  std::string work_dir;               // configs, logs and data dirs go here
  std::string xdcd_binary;            // path to xdcd
  std::vector<std::string> clusters;  // names; the i-th gets initial_failover_version i + 1
  int32_t shard_count = 4;
  int64_t failover_version_increment = 100;
  std::string bootstrap;            // the broker's bootstrap servers
  std::string topic_prefix;         // kafka.topic_prefix, unique per run
  bool enable_fault_points = true;  // XDC_ENABLE_FAULT_POINTS=1: /v1/fault-points is served
};

class ClusterSet {
 public:
  // Bound on one HTTP exchange with a daemon (a SIGSTOPped daemon never answers).
  static constexpr absl::Duration kControlRequestTimeout = absl::Seconds(5);
  // From spawn to "xdcd: ready" (RocksDB open, Kafka metadata, topics).
  static constexpr absl::Duration kStartTimeout = absl::Seconds(60);
  // SIGKILL to reaped.
  static constexpr absl::Duration kReapTimeout = absl::Seconds(10);
  // SIGTERM to exit, at the end of a run.
  static constexpr absl::Duration kStopGrace = absl::Seconds(10);
  // Between two polls of a condition.
  static constexpr absl::Duration kPollInterval = absl::Milliseconds(50);

  // Writes the configs. INVALID_ARGUMENT for fewer than two clusters or a missing option.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ClusterSet>> Create(
      ClusterSetOptions options);
  ~ClusterSet();
  ClusterSet(const ClusterSet&) = delete;
  ClusterSet& operator=(const ClusterSet&) = delete;

  [[nodiscard]] const std::vector<std::string>& names() const { return options_.clusters; }

  // Starts every cluster, in order.
  [[nodiscard]] absl::Status StartAll();
  // Starts (or restarts, same config and data dir) one cluster; FAILED_PRECONDITION if it runs.
  [[nodiscard]] absl::Status Start(const std::string& name);
  // SIGKILL and reap.
  [[nodiscard]] absl::Status Kill(const std::string& name);
  // SIGSTOP / SIGCONT.
  [[nodiscard]] absl::Status Pause(const std::string& name);
  [[nodiscard]] absl::Status Resume(const std::string& name);
  // SIGCONT, then SIGTERM and wait (SIGKILL after kStopGrace); every cluster. Returns the first
  // cluster that did not stop cleanly, if any (the run's outcome does not depend on it).
  [[nodiscard]] absl::Status StopAll();

  // True while the process runs (a paused one runs). Reaps a process that exited.
  [[nodiscard]] bool running(const std::string& name);
  [[nodiscard]] bool paused(const std::string& name) const;
  // Whether this cluster's process ended without being killed by us (reaped; cleared by Start).
  // Returns how it ended then, e.g. "exit code 1".
  [[nodiscard]] std::string unexpected_exit(const std::string& name);
  // Current HTTP address (host:port), "" while not running. Thread-safe.
  [[nodiscard]] std::string address(const std::string& name) const;
  [[nodiscard]] std::string log_path(const std::string& name) const;
  // The process id of the cluster's latest process (0 if never started; it may have ended), for
  // /proc readers such as xdc-bench's CPU and RSS sampling. Runner thread only.
  [[nodiscard]] pid_t pid(const std::string& name) const;
  [[nodiscard]] std::string LogTail(const std::string& name, int max_lines = 30) const;

  // Arms and disarms fault points on one running cluster; returns what is armed afterwards.
  // The runner's record of what it armed follows (see Start).
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> SetFaultPoints(
      const std::string& name, const std::vector<std::string>& arm,
      const std::vector<std::string>& disarm);
  // What the runner armed on `name` and has not disarmed.
  [[nodiscard]] std::set<std::string> armed(const std::string& name) const;

  // GET /v1/status.
  [[nodiscard]] absl::StatusOr<StatusResponse> Status(const std::string& name) const;
  // GET /v1/namespaces/{ns} on `name`.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> Namespace(const std::string& name,
                                                          const std::string& ns) const;
  // The newest record of `ns` among the running clusters that answer: highest
  // (failover_version, state_sequence). UNAVAILABLE if none answers.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> NewestNamespace(const std::string& ns) const;

  // Registers `ns` on `active` with every cluster as a member, and waits until every cluster
  // knows it (at most `timeout`).
  [[nodiscard]] absl::Status RegisterNamespace(const std::string& ns, const std::string& active,
                                               absl::Duration timeout);
  // POST /v1/namespaces/{ns}/failover {target, force: true} to `target`.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> ForceFailover(const std::string& ns,
                                                              const std::string& target);
  // POST /v1/namespaces/{ns}/failover {target, timeout_ms} to `source` (the active cluster):
  // returns the source's record in HANDOVER.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> BeginHandover(const std::string& ns,
                                                              const std::string& source,
                                                              const std::string& target,
                                                              absl::Duration timeout);
  // POST /v1/namespaces/{ns}/cancel-handover to `name`.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> CancelHandover(const std::string& ns,
                                                               const std::string& name,
                                                               const std::string& reason);

 private:
  struct Member {
    std::string name;
    std::string config_path;
    std::string log_path;
    std::unique_ptr<ChildProcess> process;
    bool paused = false;
    bool killed = false;           // by us: not an unexpected exit
    std::string exit_description;  // how it ended unexpectedly, once seen
    std::set<std::string> armed;   // fault points the runner armed here
  };

  explicit ClusterSet(ClusterSetOptions options) : options_(std::move(options)) {}
  [[nodiscard]] absl::StatusOr<Member*> Find(const std::string& name);
  [[nodiscard]] absl::StatusOr<const Member*> Find(const std::string& name) const;
  void SetAddress(const std::string& name, std::string address);
  // One JSON call to a running cluster.
  [[nodiscard]] absl::Status Call(const std::string& name, const std::string& method,
                                  const std::string& target,
                                  const google::protobuf::Message* request,
                                  google::protobuf::Message& response) const;

  const ClusterSetOptions options_;
  std::vector<Member> members_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::string> addresses_ ABSL_GUARDED_BY(mu_);
};

}  // namespace xdc::chaos
