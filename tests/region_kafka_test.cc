// Every region on its own Kafka (docs/deployment.md): east and west each produce only to their
// own Kafka and read the other's topics from the other's Kafka, named in their `clusters` entry.
//
//   RegionKafkaTest            each xdcd starts its own embedded Kafka on a fixed loopback
//                              address (kafka.embedded_listen_address), as the demo does
//   RegionKafkaRealBrokerTest  two real Apache Kafka brokers (KRaft), one per region
//                              (scripts/kafka.sh install must have run)
//
// Both replicate both ways, hand the namespace over, and check that each cluster's topics exist
// on its own Kafka only. An applier started before its peer waits for the peer's topics and says
// so in status.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "chaos/broker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/config.h"
#include "replicator/backfill_topic.h"
#include "replicator/kafka_client.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kNamespace[] = "orders";
constexpr int kMetadataTimeoutMs = 10000;
constexpr int kWorkflows = 12;

// `count` free loopback ports, held bound together while picked so that they differ.
std::vector<uint16_t> FreeLoopbackPorts(int count) {
  std::vector<int> sockets;
  std::vector<uint16_t> ports;
  for (int i = 0; i < count; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    socklen_t length = sizeof address;
    EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
    ports.push_back(ntohs(address.sin_port));
    sockets.push_back(fd);
  }
  for (int fd : sockets) close(fd);
  return ports;
}

// The three topics `cluster` produces to.
std::vector<TopicSpec> TopicsOf(const std::string& cluster, const std::string& prefix) {
  return {{HistoryTopic(cluster, prefix), 4},
          {ControlTopic(cluster, prefix), 1},
          {BackfillTopic(cluster, prefix), 4}};
}

// The topics of `wanted` the Kafka at `bootstrap` lacks.
std::vector<std::string> LackingOn(const std::string& bootstrap,
                                   const std::vector<TopicSpec>& wanted) {
  absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer =
      KafkaConsumer::Create(bootstrap, "region-kafka-test", 10);
  EXPECT_TRUE(consumer.ok()) << consumer.status();
  if (!consumer.ok()) return {};
  absl::StatusOr<std::vector<std::string>> lacking =
      (*consumer)->LackingTopics(wanted, kMetadataTimeoutMs);
  EXPECT_TRUE(lacking.ok()) << lacking.status();
  return lacking.ok() ? *lacking : std::vector<std::string>{};
}

absl::StatusOr<NamespaceRecord> RequestFailover(HttpClient& client, const std::string& target) {
  FailoverRequest request;
  request.set_target_cluster(target);
  NamespaceRecord record;
  if (absl::Status s = client.Call("POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"),
                                   &request, record);
      !s.ok()) {
    return s;
  }
  return record;
}

// The live stream's PeerKafkaStatus for `peer` in `status` (default if none).
PeerKafkaStatus LiveKafkaOf(const StatusResponse& status, const std::string& peer) {
  for (const PeerKafkaStatus& kafka : status.peer_kafka()) {
    if (kafka.peer() == peer && kafka.stream() == "live") return kafka;
  }
  return {};
}

// Two regions, each on a Kafka of its own. A derived fixture says what each region's Kafka is:
// how the region's own xdcd reaches it (OwnKafka) and how its peer does (PeerBootstrap).
class RegionsTest : public ::testing::Test {
 protected:
  virtual KafkaConfig OwnKafka(const std::string& cluster) = 0;
  virtual std::string PeerBootstrap(const std::string& cluster) = 0;
  virtual std::string Prefix() { return ""; }

  DaemonConfig ConfigOf(const std::string& cluster, const std::string& data_dir) {
    DaemonConfig config = MakeConfig(cluster, data_dir, "");
    *config.mutable_kafka() = OwnKafka(cluster);
    config.mutable_kafka()->set_topic_prefix(Prefix());
    for (ClusterConfig& entry : *config.mutable_clusters()) {
      // Every cluster's entry names its Kafka, this one's included (one list for all configs).
      entry.mutable_kafka()->set_bootstrap_servers(PeerBootstrap(entry.name()));
    }
    return config;
  }

  void StartEast() {
    absl::StatusOr<std::unique_ptr<Daemon>> east =
        Daemon::Start(ConfigOf("east", east_dir_.path()));
    ASSERT_TRUE(east.ok()) << east.status();
    east_ = *std::move(east);
    east_client_ = std::make_unique<HttpClient>(east_->http_address());
  }

  void StartWest() {
    absl::StatusOr<std::unique_ptr<Daemon>> west =
        Daemon::Start(ConfigOf("west", west_dir_.path()));
    ASSERT_TRUE(west.ok()) << west.status();
    west_ = *std::move(west);
    west_client_ = std::make_unique<HttpClient>(west_->http_address());
  }

  void TearDown() override {
    west_client_.reset();
    east_client_.reset();
    west_.reset();
    east_.reset();
  }

  // Waits until `from` and `to` hold the same workflows of the namespace, with equal digests.
  void WaitForConvergence(HttpClient& from, HttpClient& to) {
    std::string last;
    const bool converged = WaitUntil([&] {
      absl::StatusOr<ListDigestsResponse> a = Digests(from, kNamespace);
      absl::StatusOr<ListDigestsResponse> b = Digests(to, kNamespace);
      if (!a.ok() || !b.ok()) {
        last = absl::StrCat(a.status().ToString(), " / ", b.status().ToString());
        return false;
      }
      last = absl::StrCat(a->workflows_size(), " vs ", b->workflows_size(), " workflows");
      return google::protobuf::util::MessageDifferencer::Equals(*a, *b);
    });
    EXPECT_TRUE(converged) << "digests never matched: " << last;
  }

  // The whole scenario: east alone waits for west's topics; then both replicate both ways and
  // hand over; each cluster's topics exist only on its own Kafka.
  void ReplicateBothWaysAndHandOver() {
    ASSERT_NO_FATAL_FAILURE(StartEast());
    // West has not started: its topics do not exist on its Kafka, and east says it waits.
    PeerKafkaStatus waiting;
    ASSERT_TRUE(WaitUntil([&] {
      waiting = LiveKafkaOf(GetStatus(*east_client_), "west");
      return waiting.waiting_for_topics_size() > 0;
    })) << waiting.DebugString();
    EXPECT_EQ(waiting.kafka_bootstrap(), PeerBootstrap("west"));
    EXPECT_TRUE(waiting.peer_kafka_configured());
    EXPECT_THAT(waiting.waiting_for_topics(), UnorderedElementsAre(HistoryTopic("west", Prefix()),
                                                                   ControlTopic("west", Prefix())));
    EXPECT_GT(waiting.waiting_since_unix_micros(), 0);
    // East created its own topics and not west's, on its Kafka.
    EXPECT_THAT(LackingOn(PeerBootstrap("east"), TopicsOf("east", Prefix())), IsEmpty());
    EXPECT_THAT(LackingOn(PeerBootstrap("east"), TopicsOf("west", Prefix())),
                UnorderedElementsAre(HistoryTopic("west", Prefix()), ControlTopic("west", Prefix()),
                                     BackfillTopic("west", Prefix())));

    ASSERT_NO_FATAL_FAILURE(StartWest());
    ASSERT_TRUE(WaitUntil([&] {
      return LiveKafkaOf(GetStatus(*east_client_), "west").waiting_for_topics_size() == 0;
    }));

    // Active on east: west reads east's history and control topics from east's Kafka.
    RegisterNamespaceRequest request;
    request.set_name(kNamespace);
    request.add_clusters("east");
    request.add_clusters("west");
    request.set_active_cluster("east");
    NamespaceRecord record;
    ASSERT_TRUE(east_client_->Call("POST", "/v1/namespaces", &request, record).ok());
    ASSERT_TRUE(WaitUntil([&] {
      NamespaceRecord on_west;
      return west_client_
          ->Call("GET", absl::StrCat("/v1/namespaces/", kNamespace), nullptr, on_west)
          .ok();
    }));
    WriteWorkflows(east_->http_address(), kNamespace, "on-east", kWorkflows);
    WaitForConvergence(*east_client_, *west_client_);

    // Graceful handover to west: west activates once it applied east's markers from east's
    // Kafka; east learns the decision from west's control topic on west's Kafka.
    absl::StatusOr<NamespaceRecord> started = RequestFailover(*east_client_, "west");
    ASSERT_TRUE(started.ok()) << started.status();
    ASSERT_TRUE(WaitUntil([&] {
      return GetRecord(*east_client_, kNamespace).active_cluster() == "west" &&
             GetRecord(*east_client_, kNamespace).state() == NAMESPACE_STATE_ACTIVE;
    }));
    EXPECT_EQ(GetRecord(*west_client_, kNamespace).active_cluster(), "west");
    // Written on west, applied on east from west's Kafka.
    WriteWorkflows(west_->http_address(), kNamespace, "on-west", kWorkflows);
    WaitForConvergence(*west_client_, *east_client_);
    absl::StatusOr<ListDigestsResponse> on_east = Digests(*east_client_, kNamespace);
    ASSERT_TRUE(on_east.ok());
    EXPECT_EQ(on_east->workflows_size(), 2 * kWorkflows);

    // Each cluster's topics live on its own Kafka only.
    EXPECT_THAT(LackingOn(PeerBootstrap("west"), TopicsOf("west", Prefix())), IsEmpty());
    EXPECT_THAT(LackingOn(PeerBootstrap("west"), TopicsOf("east", Prefix())),
                UnorderedElementsAre(HistoryTopic("east", Prefix()), ControlTopic("east", Prefix()),
                                     BackfillTopic("east", Prefix())));
    EXPECT_THAT(LackingOn(PeerBootstrap("east"), TopicsOf("west", Prefix())),
                UnorderedElementsAre(HistoryTopic("west", Prefix()), ControlTopic("west", Prefix()),
                                     BackfillTopic("west", Prefix())));
    // And status says where each peer is read from.
    const PeerKafkaStatus west_on_east = LiveKafkaOf(GetStatus(*east_client_), "west");
    EXPECT_EQ(west_on_east.kafka_bootstrap(), PeerBootstrap("west"));
    const PeerKafkaStatus east_on_west = LiveKafkaOf(GetStatus(*west_client_), "east");
    EXPECT_EQ(east_on_west.kafka_bootstrap(), PeerBootstrap("east"));
    EXPECT_TRUE(east_on_west.peer_kafka_configured());
    EXPECT_THAT(east_on_west.waiting_for_topics(), IsEmpty());
    EXPECT_THAT(GetStatus(*east_client_).halted_appliers(), IsEmpty());
    EXPECT_THAT(GetStatus(*west_client_).halted_appliers(), IsEmpty());
  }

  ScopedDir east_dir_{"east"};
  ScopedDir west_dir_{"west"};
  std::unique_ptr<Daemon> east_;
  std::unique_ptr<Daemon> west_;
  std::unique_ptr<HttpClient> east_client_;
  std::unique_ptr<HttpClient> west_client_;
};

// Each xdcd hosts its region's Kafka (the embedded default) on a fixed loopback address.
class RegionKafkaTest : public RegionsTest {
 protected:
  RegionKafkaTest() {
    const std::vector<uint16_t> ports = FreeLoopbackPorts(2);
    east_address_ = absl::StrCat("127.0.0.1:", ports[0]);
    west_address_ = absl::StrCat("127.0.0.1:", ports[1]);
  }
  KafkaConfig OwnKafka(const std::string& cluster) override {
    KafkaConfig kafka;
    kafka.set_embedded_listen_address(PeerBootstrap(cluster));
    return kafka;
  }
  std::string PeerBootstrap(const std::string& cluster) override {
    return cluster == "east" ? east_address_ : west_address_;
  }

  std::string east_address_;
  std::string west_address_;
};

TEST_F(RegionKafkaTest, TwoRegionsOnTheirOwnEmbeddedKafkasReplicateBothWaysAndHandOver) {
  ReplicateBothWaysAndHandOver();
  EXPECT_TRUE(east_->embedded_kafka());
  EXPECT_EQ(east_->kafka_bootstrap(), east_address_);
  EXPECT_TRUE(west_->embedded_kafka());
  EXPECT_EQ(west_->kafka_bootstrap(), west_address_);
}

TEST_F(RegionKafkaTest, AnEmbeddedListenAddressInUseStopsTheStartNamingTheField) {
  ASSERT_NO_FATAL_FAILURE(StartEast());
  // A second daemon asking for the same fixed address.
  DaemonConfig config = ConfigOf("west", west_dir_.path());
  config.mutable_kafka()->set_embedded_listen_address(east_address_);
  absl::StatusOr<std::unique_ptr<Daemon>> west = Daemon::Start(config);
  ASSERT_FALSE(west.ok());
  EXPECT_THAT(west.status().message(), HasSubstr("kafka.embedded_listen_address"));
  EXPECT_THAT(west.status().message(), HasSubstr(east_address_));
}

// The replication factor rule on a Kafka of several brokers (the embedded mock with three).
TEST(TopicReplicationTest, FactorOneOnSeveralBrokersIsRefusedUnlessAllowed) {
  ScopedDir dir("rf");
  Tunables tunables;
  tunables.embedded_kafka_brokers = 3;
  DaemonConfig config = MakeConfig("east", dir.path(), "");
  config.mutable_kafka()->clear_bootstrap_servers();
  config.mutable_kafka()->clear_topic_prefix();
  config.mutable_kafka()->set_replication_factor(1);
  absl::StatusOr<std::unique_ptr<Daemon>> refused = Daemon::Start(config, tunables);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("kafka.replication_factor is 1"));
  EXPECT_THAT(refused.status().message(), HasSubstr("has 3 brokers"));
  EXPECT_THAT(refused.status().message(), HasSubstr("allow_replication_factor_one"));

  config.mutable_kafka()->set_allow_replication_factor_one(true);
  absl::StatusOr<std::unique_ptr<Daemon>> allowed = Daemon::Start(config, tunables);
  ASSERT_TRUE(allowed.ok()) << allowed.status();
}

// Two real Apache Kafka brokers, one per region.
class RegionKafkaRealBrokerTest : public RegionsTest {
 protected:
  void SetUp() override {
    for (const char* region : {"east", "west"}) {
      chaos::BrokerOptions options;
      options.kind = chaos::BrokerKind::kReal;
      options.work_dir = absl::StrCat(brokers_dir_.path(), "/", region);
      options.heap_mb = 256;
      absl::StatusOr<std::unique_ptr<chaos::Broker>> broker = chaos::Broker::Start(options);
      ASSERT_TRUE(broker.ok()) << broker.status();
      (std::string(region) == "east" ? east_broker_ : west_broker_) = *std::move(broker);
    }
  }
  void TearDown() override {
    RegionsTest::TearDown();
    west_broker_.reset();
    east_broker_.reset();
  }
  KafkaConfig OwnKafka(const std::string& cluster) override {
    KafkaConfig kafka;
    kafka.set_bootstrap_servers(PeerBootstrap(cluster));
    return kafka;
  }
  std::string PeerBootstrap(const std::string& cluster) override {
    return cluster == "east" ? east_broker_->bootstrap() : west_broker_->bootstrap();
  }

  ScopedDir brokers_dir_{"brokers"};
  std::unique_ptr<chaos::Broker> east_broker_;
  std::unique_ptr<chaos::Broker> west_broker_;
};

TEST_F(RegionKafkaRealBrokerTest, TwoRegionsOnTheirOwnBrokersReplicateBothWaysAndHandOver) {
  ReplicateBothWaysAndHandOver();
}

TEST_F(RegionKafkaRealBrokerTest, AReplicationFactorAboveTheBrokerCountIsRefusedNamingTheField) {
  DaemonConfig config = ConfigOf("east", east_dir_.path());
  config.mutable_kafka()->set_replication_factor(3);
  absl::StatusOr<std::unique_ptr<Daemon>> refused = Daemon::Start(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(),
              HasSubstr(absl::StrFormat("kafka.replication_factor is 3 but the Kafka at %s has "
                                        "1 broker: set kafka.replication_factor to at most 1",
                                        east_broker_->bootstrap())));
  // Nothing was created.
  EXPECT_THAT(LackingOn(east_broker_->bootstrap(), TopicsOf("east", Prefix())),
              UnorderedElementsAre(HistoryTopic("east", Prefix()), ControlTopic("east", Prefix()),
                                   BackfillTopic("east", Prefix())));
}

}  // namespace
}  // namespace xdc
