// Three whole clusters (east, west, north) in one process on a Kafka mock the test owns, for the
// migration tests (docs/migration.md): east and west as in MakeConfig, north a cluster whose
// config also lists itself, to be added to the others online. Every cluster's topics exist from
// the start (the mock does not serve CreateTopics), so a cluster that joins later finds them.
//
// Used by tests/migration_test.cc and tests/migration_e2e_test.cc. Not thread-safe, but for
// AddressOf (read by load threads while the test thread restarts clusters).
#pragma once

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "replicator/backfill_topic.h"
#include "replicator/xdcctl_load.h"
#include "tests/ledger_client.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace migration {

// Stops and joins a load thread when the test returns, also after a failed assertion.
struct JoinOnExit {
  std::atomic<bool>& stop;
  std::thread& thread;
  ~JoinOnExit() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
};

inline constexpr char kNamespace[] = "orders";  // LedgerClient writes to it
inline constexpr int32_t kShards = 8;

// Writes `count` two-event workflows (old-0, old-1, ...) to namespace kNamespace at `address`.
inline void WriteSmallWorkflows(const std::string& address, int count) {
  LoadOptions options;
  options.address = address;
  options.namespace_name = kNamespace;
  options.workflow_prefix = "old";
  options.workflows = count;
  options.events_per_workflow = 2;
  options.signals_per_workflow = 0;
  options.concurrency = 8;
  absl::StatusOr<LoadResult> written = RunLoad(options);
  ASSERT_TRUE(written.ok()) << written.status();
  ASSERT_EQ(written->workflows_completed, count) << written->first_error;
}

class MigrationClusters : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = RealKafkaBootstrap();
    if (bootstrap_.empty()) {
      absl::StatusOr<std::unique_ptr<EmbeddedKafka>> kafka = EmbeddedKafka::Start(1);
      ASSERT_TRUE(kafka.ok()) << kafka.status();
      kafka_ = *std::move(kafka);
      bootstrap_ = kafka_->bootstrap();
      // The mock does not serve CreateTopics: every cluster's topics exist from the start, as
      // an operator (or a broker with topic creation) provides them.
      for (const char* cluster : {"east", "west", "north"}) {
        for (const auto& [topic, partitions] :
             {std::pair{HistoryTopic(cluster), kShards}, std::pair{ControlTopic(cluster), 1},
              std::pair{BackfillTopic(cluster), kShards}}) {
          ASSERT_TRUE(kafka_->CreateTopic(topic, partitions).ok());
        }
      }
    }
  }

  void TearDown() override {
    clients_.clear();
    daemons_.clear();
  }

  // east and west as in MakeConfig; north also lists itself (it joins them online).
  DaemonConfig ConfigFor(const std::string& cluster) {
    DaemonConfig config = MakeConfig(cluster, dirs_.at(cluster).path(), bootstrap_, kShards);
    for (const auto& [key, value] : kafka_properties_) {
      (*config.mutable_kafka()->mutable_properties())[key] = value;
    }
    if (cluster == "north") {
      ClusterConfig* north = config.add_clusters();
      north->set_name("north");
      north->set_initial_failover_version(3);
    }
    return config;
  }

  void Start(const std::string& cluster) {
    absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(ConfigFor(cluster));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemons_[cluster] = *std::move(daemon);
    clients_[cluster] = std::make_unique<HttpClient>(daemons_[cluster]->http_address());
    std::lock_guard<std::mutex> lock(addresses_mu_);
    addresses_[cluster] = daemons_[cluster]->http_address();
  }

  void Stop(const std::string& cluster) {
    clients_.erase(cluster);
    daemons_.erase(cluster);
  }

  std::string AddressOf(const std::string& cluster) {
    std::lock_guard<std::mutex> lock(addresses_mu_);
    auto it = addresses_.find(cluster);
    return it == addresses_.end() ? std::string() : it->second;
  }

  HttpClient& Client(const std::string& cluster) { return *clients_.at(cluster); }

  NamespaceRecord Record(const std::string& cluster) {
    NamespaceRecord record;
    absl::Status s =
        Client(cluster).Call("GET", absl::StrCat("/v1/namespaces/", kNamespace), nullptr, record);
    return s.ok() ? record : NamespaceRecord();
  }

  void Register(const std::vector<std::string>& members) {
    RegisterNamespaceRequest request;
    request.set_name(kNamespace);
    for (const std::string& member : members) request.add_clusters(member);
    request.set_active_cluster("east");
    NamespaceRecord record;
    ASSERT_TRUE(Client("east").Call("POST", "/v1/namespaces", &request, record).ok());
  }

  // POST /v1/clusters on `on` for north (initial version 3, the federation's layout).
  absl::StatusOr<ListClustersResponse> AddNorth(const std::string& on) {
    AddClusterRequest request;
    request.set_name("north");
    request.set_initial_failover_version(3);
    request.set_failover_version_increment(100);
    request.set_shard_count(kShards);
    ListClustersResponse response;
    if (absl::Status s = Client(on).Call("POST", "/v1/clusters", &request, response); !s.ok()) {
      return s;
    }
    return response;
  }

  absl::StatusOr<NamespaceRecord> ChangeMembers(const std::string& on, const std::string& add,
                                                const std::string& remove) {
    NamespaceClustersRequest request;
    request.set_add(add);
    request.set_remove(remove);
    NamespaceRecord record;
    if (absl::Status s = Client(on).Call(
            "POST", absl::StrCat("/v1/namespaces/", kNamespace, "/clusters"), &request, record);
        !s.ok()) {
      return s;
    }
    return record;
  }

  // The peer shard statuses `cluster` reports for the stream named `peer` (e.g. "east" or
  // "east#backfill").
  std::vector<PeerShardStatus> PeerStatus(const std::string& cluster, const std::string& peer) {
    std::vector<PeerShardStatus> result;
    const StatusResponse status = GetStatus(Client(cluster));
    for (const ShardStatus& shard : status.shards()) {
      for (const PeerShardStatus& status : shard.peers()) {
        if (status.peer() == peer) result.push_back(status);
      }
    }
    return result;
  }

  bool SameDigests(const std::string& a, const std::string& b) {
    absl::StatusOr<ListDigestsResponse> left = Digests(Client(a), kNamespace);
    absl::StatusOr<ListDigestsResponse> right = Digests(Client(b), kNamespace);
    return left.ok() && right.ok() && left->workflows_size() > 0 &&
           google::protobuf::util::MessageDifferencer::Equals(*left, *right);
  }

  // Every event the load had acknowledged is in `cluster`'s history of its workflow.
  void ExpectAckedOn(LedgerClient& load, const std::string& cluster) {
    std::map<std::string, GetHistoryResponse> histories;
    std::lock_guard<std::mutex> lock(load.mu_);
    ASSERT_GT(load.acked_.size(), 0u);
    for (const auto& [workflow, event_id, version] : load.acked_) {
      auto [it, inserted] = histories.try_emplace(workflow);
      if (inserted) {
        ASSERT_TRUE(
            Client(cluster)
                .Call("GET",
                      absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=", workflow),
                      nullptr, it->second)
                .ok())
            << workflow << " is missing on " << cluster;
      }
      const auto& events = it->second.events();
      // Copies, not the bindings: clang 14 cannot capture structured bindings in a lambda.
      const bool found =
          std::any_of(events.begin(), events.end(),
                      [&, event_id = event_id, version = version](const HistoryEvent& e) {
                        return e.event_id() == event_id && e.version() == version;
                      });
      EXPECT_TRUE(found) << "acknowledged event " << event_id << " (version " << version << ") of "
                         << workflow << " is not on " << cluster;
    }
  }

  std::string bootstrap_;
  std::unique_ptr<EmbeddedKafka> kafka_;  // null on a real broker (XDC_TEST_KAFKA_BOOTSTRAP)
  std::map<std::string, std::string> kafka_properties_;  // kafka.properties of every cluster
  std::map<std::string, ScopedDir> dirs_ = [] {
    std::map<std::string, ScopedDir> dirs;
    for (const char* name : {"east", "west", "north"}) dirs.try_emplace(name, name);
    return dirs;
  }();
  std::map<std::string, std::unique_ptr<Daemon>> daemons_;
  std::map<std::string, std::unique_ptr<HttpClient>> clients_;
  std::mutex addresses_mu_;
  std::map<std::string, std::string> addresses_;
};

}  // namespace migration
}  // namespace xdc
