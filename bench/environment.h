// What one measurement runs on: a Kafka broker, two xdcd processes ("east" active, "west"
// standby) on it, and the namespace "bench" registered on east and known to west.
//
// Contract:
//   - Real broker: one broker serves every environment of a run (StartBroker once); each
//     environment gets its own topic prefix, and xdcd creates its topics. Mock broker: each
//     environment starts its own xdc-kafka-mock, because the mock creates topics only at start
//     (for the clusters, shard count and prefix it is given) and keeps ~5 MiB per partition.
//   - Create() returns once both daemons printed "ready" and west knows the namespace.
//   - The destructor stops the daemons (and the environment's own mock broker).
//
// Thread-safety: one thread (the bench's main thread) calls the methods; route() is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/open_loop.h"
#include "bench/options.h"
#include "chaos/broker.h"
#include "chaos/cluster_set.h"

namespace xdc::bench {

inline constexpr char kNamespace[] = "bench";
inline constexpr char kEast[] = "east";  // Route index 0, active at the start
inline constexpr char kWest[] = "west";  // Route index 1
// Registering the namespace and west learning it.
inline constexpr absl::Duration kNamespaceTimeout = absl::Seconds(60);

// The broker shared by the run (real), or nullptr (mock: each environment starts its own).
[[nodiscard]] absl::StatusOr<std::unique_ptr<chaos::Broker>> StartSharedBroker(
    const BenchOptions& options, const std::string& work_dir);

// A mock broker with the topics of `clusters` (history partitions = shards) under `prefix`.
[[nodiscard]] absl::StatusOr<std::unique_ptr<chaos::Broker>> StartMockBroker(
    const BenchOptions& options, const std::string& work_dir,
    const std::vector<std::string>& clusters, int32_t shards, const std::string& prefix);

class Environment {
 public:
  // `shared_broker`: the real broker, or nullptr for a mock of this environment's own.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Environment>> Create(
      const BenchOptions& options, chaos::Broker* shared_broker, const std::string& work_dir,
      int32_t shards);
  ~Environment();

  [[nodiscard]] chaos::ClusterSet& clusters() { return *clusters_; }
  [[nodiscard]] Route& route() { return *route_; }
  [[nodiscard]] const std::string& namespace_id() const { return namespace_id_; }
  [[nodiscard]] int32_t shards() const { return shards_; }
  // Process ids by Route index.
  [[nodiscard]] std::vector<pid_t> pids() const;

 private:
  Environment() = default;
  std::unique_ptr<chaos::Broker> own_broker_;
  std::unique_ptr<chaos::ClusterSet> clusters_;
  std::unique_ptr<Route> route_;
  std::string namespace_id_;
  int32_t shards_ = 0;
};

// Where xdcd and xdc-kafka-mock are: --bin-dir, else the directory of this executable.
[[nodiscard]] std::string BinDir(const BenchOptions& options);

}  // namespace xdc::bench
