// Group commit: many writers, one durable write per group.
//
// Writers call Commit() (or Enqueue() then Wait()), which blocks until their write is durable or
// has failed. One thread takes every queued write (up to `max_group_size`) in queue order and
// hands the group to `write_group`, which makes it durable in one synced write. So concurrent
// writers share an fsync, and writes become durable in the order they were enqueued.
//
// Latching: if a group fails, its writes and every later one fail with that error; the outcome
// of the failed write is not known, so nothing more is written until the process restarts.
//
// Thread-safe. Hold()/Release() stop and restart the writer thread between groups (tests use them
// to make grouping deterministic).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace xdc {

template <typename Write>
class GroupCommitter {
 public:
  using WriteGroupFn = std::function<absl::Status(const std::vector<Write*>& group)>;

  GroupCommitter(WriteGroupFn write_group, size_t max_group_size)
      : write_group_(std::move(write_group)), max_group_size_(max_group_size) {
    thread_ = std::thread([this] { Run(); });
  }

  ~GroupCommitter() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      held_ = false;
    }
    writer_cv_.Signal();
    thread_.join();
  }

  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // One queued write, owned by the caller from Enqueue() until Wait() returns.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    friend class GroupCommitter;
    // All guarded by the committer's mu_ (not expressible as ABSL_GUARDED_BY here: the ticket
    // does not know its committer). Only the committer's members touch them, under mu_.
    Write* write = nullptr;
    bool queued = false;
    bool done = false;
    absl::Status status;
    // Signalled once `done`: only this ticket's waiter wakes, not every waiting writer (with
    // dozens of writers, waking all of them per group was most of the daemon's CPU).
    absl::CondVar done_cv;
  };

  // Queues `write` without waiting. Writes become durable in Enqueue order, so a caller that
  // holds its own lock across Enqueue orders its writes by that lock. `write` and `ticket` must
  // stay valid until Wait(ticket) returns. Fails at once if the committer latched or is closing.
  [[nodiscard]] absl::Status Enqueue(Write& write, Ticket& ticket) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!latched_.ok()) return latched_;
    if (stopping_) return absl::UnavailableError("store is closing");
    ticket.write = &write;
    ticket.queued = true;
    queue_.push_back(&ticket);
    writer_cv_.Signal();
    return absl::OkStatus();
  }

  // Blocks until the enqueued write is durable (OK) or failed.
  [[nodiscard]] absl::Status Wait(Ticket& ticket) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!ticket.queued) return absl::FailedPreconditionError("write was not enqueued");
    while (!ticket.done) ticket.done_cv.Wait(&mu_);
    return ticket.status;
  }

  // Enqueue, then Wait.
  [[nodiscard]] absl::Status Commit(Write& write) ABSL_LOCKS_EXCLUDED(mu_) {
    Ticket ticket;
    if (absl::Status s = Enqueue(write, ticket); !s.ok()) return s;
    return Wait(ticket);
  }

  void Hold() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  void Release() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      held_ = false;
    }
    writer_cv_.Signal();
  }

  [[nodiscard]] size_t queued() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return queue_.size();
  }
  [[nodiscard]] uint64_t groups_written() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return groups_written_;
  }
  [[nodiscard]] uint64_t writes_committed() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return writes_committed_;
  }
  // Non-OK once a group failed.
  [[nodiscard]] absl::Status latched_error() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return latched_;
  }

 private:
  // The writer thread. Holds mu_ except while `write_group_` runs.
  void Run() ABSL_LOCKS_EXCLUDED(mu_) {
    mu_.Lock();
    while (true) {
      while (!stopping_ && (held_ || queue_.empty())) writer_cv_.Wait(&mu_);
      if (queue_.empty() && stopping_) break;
      std::vector<Ticket*> group;
      while (!queue_.empty() && group.size() < max_group_size_) {
        group.push_back(queue_.front());
        queue_.pop_front();
      }
      absl::Status status = latched_;
      if (status.ok()) {
        std::vector<Write*> writes;
        writes.reserve(group.size());
        for (Ticket* t : group) writes.push_back(t->write);
        mu_.Unlock();
        status = write_group_(writes);
        mu_.Lock();
        if (status.ok()) {
          ++groups_written_;
          writes_committed_ += group.size();
        } else {
          latched_ = absl::UnavailableError(absl::StrCat(
              "store write failed, so its outcome is unknown and the store refuses further "
              "writes until xdcd restarts (fix the cause first, e.g. free disk space): ",
              status.ToString()));
          status = latched_;
        }
      }
      for (Ticket* t : group) {
        t->status = status;
        t->done = true;
        t->done_cv.Signal();
      }
    }
    mu_.Unlock();
  }

  const WriteGroupFn write_group_;
  const size_t max_group_size_;
  mutable absl::Mutex mu_;
  absl::CondVar writer_cv_;  // wakes the writer thread: a write queued, release, stop
  std::deque<Ticket*> queue_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status latched_ ABSL_GUARDED_BY(mu_);
  uint64_t groups_written_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t writes_committed_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace xdc
