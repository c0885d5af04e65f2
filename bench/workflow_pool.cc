#include "bench/workflow_pool.h"

#include "absl/strings/str_cat.h"

namespace xdc::bench {

WorkflowPool::WorkflowPool(int64_t capacity, std::string prefix)
    : capacity_(capacity),
      prefix_(std::move(prefix)),
      next_event_id_(static_cast<size_t>(capacity), 1) {
  for (int64_t i = 0; i < capacity; ++i) free_.push_back(i);
}

std::optional<WorkflowPool::Lease> WorkflowPool::Take() {
  absl::MutexLock lock(&mu_);
  if (free_.empty()) return std::nullopt;
  const int64_t index = free_.front();
  free_.pop_front();
  return Lease{.index = index, .next_event_id = next_event_id_[static_cast<size_t>(index)]};
}

void WorkflowPool::Return(int64_t index, int64_t next_event_id) {
  absl::MutexLock lock(&mu_);
  int64_t& next = next_event_id_[static_cast<size_t>(index)];
  if (next == 1 && next_event_id > 1) ++started_;
  next = next_event_id;
  free_.push_back(index);
}

void WorkflowPool::Drop(int64_t index) {
  absl::MutexLock lock(&mu_);
  (void)index;
  ++dropped_;
}

int64_t WorkflowPool::started() const {
  absl::MutexLock lock(&mu_);
  return started_;
}

int64_t WorkflowPool::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

std::string WorkflowPool::WorkflowId(int64_t index) const { return absl::StrCat(prefix_, index); }

}  // namespace xdc::bench
