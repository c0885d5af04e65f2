// The workflows the load generator writes to: "<prefix><index>", index in [0, capacity). A workflow
// is started (WORKFLOW_EXECUTION_STARTED) by its first append; afterwards each append continues it
// at its next event id. At most one request per workflow is in flight (Take hands a workflow out,
// Return or Drop takes it back), so appends never race on expected_next_event_id.
//
// Workflows are handed out least recently used first, starting with those never used: the first
// `capacity` requests start `capacity` distinct workflows.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace xdc::bench {

class WorkflowPool {
 public:
  explicit WorkflowPool(int64_t capacity, std::string prefix = "wf-");

  struct Lease {
    int64_t index = 0;
    int64_t next_event_id = 1;  // 1: not started yet
  };
  // The least recently used free workflow; nullopt when all are in flight.
  [[nodiscard]] std::optional<Lease> Take();
  // The request's outcome is known: the workflow continues at `next_event_id`.
  void Return(int64_t index, int64_t next_event_id);
  // The outcome is unknown (e.g. a timeout): the workflow is never used again.
  void Drop(int64_t index);

  [[nodiscard]] int64_t started() const;  // workflows with at least one acknowledged append
  [[nodiscard]] int64_t dropped() const;
  [[nodiscard]] int64_t capacity() const { return capacity_; }

  [[nodiscard]] std::string WorkflowId(int64_t index) const;

 private:
  const int64_t capacity_;
  const std::string prefix_;
  mutable absl::Mutex mu_;
  std::deque<int64_t> free_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> next_event_id_ ABSL_GUARDED_BY(mu_);
  int64_t started_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace xdc::bench
