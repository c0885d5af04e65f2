// The open-loop load generator: request i is *due* at start + i / rate, whatever happened to
// earlier requests, so a slow system does not slow the offered load down (no coordinated
// omission). `concurrency` worker threads take the next due request, wait until it is due (never
// sleeping past it), and send it; when every worker is busy, requests go out late and their
// latency still counts from when they were due.
//
// Each request is one append of `events_per_request` events with `payload_bytes` of attributes
// each, to a workflow from the WorkflowPool, sent to the cluster the shared Route says is active:
// a POST /v1/append, or with `appends_per_request` > 1 that many consecutive requests in one
// POST /v1/append-batch, sent when the last of them is due (each keeps its own due time). The
// rate and `max_requests` count appends either way. Outcomes, per append:
//   kOk          acknowledged (durable on the active cluster)
//   kRefused     503 retryable: the namespace is in handover (nothing written; not retried,
//                the open-loop schedule moves on)
//   kRedirected  409 naming another active cluster: the Route follows it (nothing written)
//   kFailed      anything else; a transport error leaves the outcome unknown, so the workflow is
//                dropped from the pool
//
// Thread-safety: Route is thread-safe. RunOpenLoop blocks until the phase ends and its requests
// have completed; call it from one thread at a time per pool.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "bench/workflow_pool.h"

namespace xdc::bench {

// Bound on one request; past it the outcome is unknown (kFailed, workflow dropped).
inline constexpr absl::Duration kRequestTimeout = absl::Seconds(5);

// Which cluster takes writes now, and where each cluster listens.
class Route {
 public:
  Route(std::vector<std::string> clusters, std::function<std::string(const std::string&)> address)
      : clusters_(std::move(clusters)), address_(std::move(address)) {}
  [[nodiscard]] int active() const { return active_.load(); }
  void set_active(int index) { active_.store(index); }
  // Index of a cluster name, -1 if unknown.
  [[nodiscard]] int IndexOf(const std::string& name) const;
  [[nodiscard]] const std::vector<std::string>& clusters() const { return clusters_; }
  [[nodiscard]] std::string Address(int index) const { return address_(clusters_[index]); }

 private:
  const std::vector<std::string> clusters_;
  const std::function<std::string(const std::string&)> address_;
  std::atomic<int> active_{0};
};

enum class Outcome : uint8_t { kOk, kRefused, kRedirected, kFailed };

// One append (a request of its own, or one append of a batch), times in MonoMicros().
struct RequestRecord {
  int64_t due_us = 0;
  int64_t sent_us = 0;
  int64_t done_us = 0;
  int32_t shard = 0;
  int32_t events = 0;
  int8_t cluster = -1;  // index in Route::clusters() of the cluster it was sent to
  Outcome outcome = Outcome::kFailed;
};

struct OpenLoopOptions {
  std::string namespace_name;
  std::string namespace_id;  // for the shard of each workflow (protocol/shard_hash.h)
  int32_t shard_count = 1;
  double rate = 0;  // requests per second; 0: as fast as the workers go (closed loop)
  absl::Duration duration = absl::Seconds(10);
  int64_t max_requests = 0;  // 0: no limit; else the phase ends after this many requests
  int concurrency = 8;
  int events_per_request = 1;
  int appends_per_request = 1;  // > 1: POST /v1/append-batch
  int payload_bytes = 200;
};

struct OpenLoopResult {
  std::vector<RequestRecord> requests;  // in no particular order
  int64_t ok = 0, refused = 0, redirected = 0, failed = 0;
  int64_t events_ok = 0;
  std::string first_error;
  int64_t start_us = 0;
  int64_t end_us = 0;  // last request completed
};

[[nodiscard]] OpenLoopResult RunOpenLoop(const OpenLoopOptions& options, Route& route,
                                         WorkflowPool& pool);

}  // namespace xdc::bench
