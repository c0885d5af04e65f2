// The one way to read-modify-write workflows: client appends (WriteService), applied tasks and
// resend answers (PeerApplier), reapplication and DLQ retries (TaskApplier) all go through here.
//
// Per shard, a lock is held from reading a workflow's state until its write is queued to the
// store's group committer, so writes of one workflow become durable in the order they read the
// state. The state and events of writes still in flight (queued, not yet durable) are kept, so the
// next writer builds on them rather than on the older stored state; the fsync wait happens outside
// the lock, so writers share group commits.
//
// Thread-safety: thread-safe. A View is valid only inside the Queue() callback that received it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "protocol/event_reader.h"
#include "protocol/xdc.pb.h"
#include "store/store.h"

namespace xdc {

class WorkflowWriter {
 private:
  struct InFlight {
    WorkflowMutableState state;                                  // after the last queued write
    int writes = 0;                                              // queued and not yet durable
    std::map<std::pair<int64_t, int64_t>, HistoryEvent> events;  // (event id, version)
  };
  struct Shard {
    absl::Mutex mu;
    std::map<std::string, InFlight> in_flight ABSL_GUARDED_BY(mu);
  };

 public:
  WorkflowWriter(Store& store, int32_t shard_count);

  // What a writer sees while it holds a shard's lock: the newest state of each run, in flight or
  // stored, and its events.
  class View {
   public:
    [[nodiscard]] absl::StatusOr<std::optional<WorkflowMutableState>> State(
        const WorkflowKey& key) const;
    // The run's events: in flight first, then stored. Valid while the View is.
    [[nodiscard]] const EventReader& Events(const WorkflowKey& key);
    // True if a write of this shard that is queued but not yet durable carries the namespace's
    // client request `request_id` (HistoryEvent.request).
    [[nodiscard]] bool RequestInFlight(const std::string& namespace_id,
                                       const std::string& request_id) const;
    // Where a durable write put the request's events (Store::GetRequest).
    [[nodiscard]] absl::StatusOr<std::optional<RequestRecord>> Request(
        const std::string& namespace_id, const std::string& request_id) const {
      return store_.GetRequest(namespace_id, request_id);
    }

   private:
    friend class WorkflowWriter;
    class Reader final : public EventReader {
     public:
      Reader(const Store& store, WorkflowKey key, const InFlight* in_flight)
          : store_(store), key_(std::move(key)), in_flight_(in_flight) {}
      [[nodiscard]] absl::StatusOr<HistoryEvent> Read(int64_t event_id,
                                                      int64_t version) const override;

     private:
      const Store& store_;
      const WorkflowKey key_;
      const InFlight* in_flight_;
    };
    View(const Store& store, const std::map<std::string, InFlight>& in_flight)
        : store_(store), in_flight_(in_flight) {}
    const Store& store_;
    const std::map<std::string, InFlight>& in_flight_;
    std::vector<std::unique_ptr<Reader>> readers_;
  };

  // A queued write. Every queued Pending must be passed to Wait() before it is destroyed: the
  // committer holds its ticket and the shard keeps its in-flight state until then.
  class Pending {
   public:
    [[nodiscard]] const StoreWrite& write() const { return write_; }

   private:
    friend class WorkflowWriter;
    int32_t shard_ = 0;
    StoreWrite write_;
    Store::WriteTicket ticket_;
    std::vector<std::string> keys_;  // in-flight entries this write holds
    bool queued_ = false;
  };

  using BuildFn = std::function<absl::Status(View& view, StoreWrite& write)>;

  // Runs `build` with the shard's lock held; `build` fills the write and returns OK, or returns an
  // error (nothing is queued). An empty write is not queued (Wait then returns -1 at once).
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Pending>> Queue(int32_t shard, const BuildFn& build);
  // Waits until the write is durable (or failed); returns its outbox task id, or -1 if none.
  [[nodiscard]] absl::StatusOr<int64_t> Wait(Pending& pending);
  // Queue, then Wait.
  [[nodiscard]] absl::StatusOr<int64_t> Commit(int32_t shard, const BuildFn& build);

  // Runs `fn` with every shard's lock held: no write can be queued meanwhile, so whatever `fn`
  // queues comes after every write already queued, on every shard (a handover's markers). `fn`
  // must not call Queue or Commit.
  [[nodiscard]] absl::Status WithAllShardsLocked(const std::function<absl::Status()>& fn);

 private:
  Store& store_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace xdc
