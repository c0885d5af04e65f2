// Unit tests of configuration parsing and validation.

#include "protocol/config.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/xdc.pb.h"
#include "tests/test_configs.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;

using testing_util::kValidConfig;

// kValidConfig with `from` replaced by `to` (which must occur).
std::string Edited(const std::string& from, const std::string& to) {
  const std::string config = kValidConfig;
  EXPECT_NE(config.find(from), std::string::npos) << from;
  return absl::StrReplaceAll(config, {{from, to}});
}

// Parses `text` expecting INVALID_ARGUMENT whose message mentions every one of `mentions`.
void ExpectInvalid(const std::string& text, std::initializer_list<std::string> mentions) {
  absl::StatusOr<DaemonConfig> config = ParseConfig(text, "test.cfg");
  ASSERT_FALSE(config.ok()) << "accepted:\n" << text;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << config.status();
  const std::string message(config.status().message());
  EXPECT_THAT(message, HasSubstr("test.cfg"));
  for (const std::string& mention : mentions) EXPECT_THAT(message, HasSubstr(mention));
}

TEST(ConfigTest, ParsesValidConfig) {
  absl::StatusOr<DaemonConfig> config = ParseConfig(kValidConfig, "test.cfg");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cluster_name(), "east");
  EXPECT_EQ(config->failover_version_increment(), 100);
  EXPECT_EQ(config->shard_count(), 4);
  ASSERT_EQ(config->clusters_size(), 2);
  EXPECT_EQ(config->clusters(0).name(), "east");
  EXPECT_EQ(config->clusters(0).initial_failover_version(), 1);
  EXPECT_EQ(config->clusters(1).name(), "west");
  EXPECT_EQ(config->clusters(1).initial_failover_version(), 2);
  EXPECT_EQ(config->data_dir(), "/tmp/x");
  EXPECT_EQ(config->http_listen_address(), "127.0.0.1:0");
  EXPECT_TRUE(config->kafka().bootstrap_servers().empty());
  EXPECT_TRUE(ValidateConfig(*config).ok());

  const ClusterConfig* west = FindCluster(*config, "west");
  ASSERT_NE(west, nullptr);
  EXPECT_EQ(west->initial_failover_version(), 2);
  EXPECT_EQ(FindCluster(*config, "north"), nullptr);
}

TEST(ConfigTest, MissingClusterName) {
  ExpectInvalid(Edited("cluster_name: \"east\"", ""), {"cluster_name"});
}

TEST(ConfigTest, ClusterNameNotAmongClusters) {
  ExpectInvalid(Edited("cluster_name: \"east\"", "cluster_name: \"north\""),
                {"cluster_name", "north"});
}

TEST(ConfigTest, ShardCountZero) {
  ExpectInvalid(Edited("shard_count: 4", "shard_count: 0"), {"shard_count"});
  ExpectInvalid(Edited("shard_count: 4", ""), {"shard_count"});
  ExpectInvalid(Edited("shard_count: 4", "shard_count: -1"), {"shard_count"});
  ExpectInvalid(Edited("shard_count: 4", "shard_count: 4097"), {"shard_count"});
}

TEST(ConfigTest, IncrementOne) {
  ExpectInvalid(Edited("failover_version_increment: 100", "failover_version_increment: 1"),
                {"failover_version_increment"});
}

TEST(ConfigTest, InitialVersionNotBelowIncrement) {
  ExpectInvalid(Edited("initial_failover_version: 2", "initial_failover_version: 100"),
                {"initial_failover_version", "west"});
  ExpectInvalid(Edited("initial_failover_version: 2", "initial_failover_version: 150"),
                {"initial_failover_version", "west"});
  ExpectInvalid(Edited("initial_failover_version: 1", "initial_failover_version: 0"),
                {"initial_failover_version", "east"});
}

TEST(ConfigTest, DuplicateInitialVersions) {
  ExpectInvalid(Edited("initial_failover_version: 2", "initial_failover_version: 1"),
                {"initial_failover_version"});
}

TEST(ConfigTest, DuplicateClusterNames) {
  ExpectInvalid(Edited("name: \"west\" initial_failover_version: 2",
                       "name: \"east\" initial_failover_version: 2"),
                {"clusters", "east"});
}

TEST(ConfigTest, NoClusters) {
  ExpectInvalid(
      absl::StrReplaceAll(std::string(kValidConfig),
                          {{"clusters { name: \"east\" initial_failover_version: 1 }", ""},
                           {"clusters { name: \"west\" initial_failover_version: 2 }", ""}}),
      {"clusters"});
}

TEST(ConfigTest, MissingDataDir) {
  ExpectInvalid(Edited("data_dir: \"/tmp/x\"", ""), {"data_dir"});
}

TEST(ConfigTest, BadHttpListenAddress) {
  ExpectInvalid(Edited("127.0.0.1:0", "nohostport"), {"http_listen_address", "nohostport"});
  ExpectInvalid(Edited("127.0.0.1:0", "h:99999"), {"http_listen_address", "h:99999"});
  ExpectInvalid(Edited("127.0.0.1:0", "h:port"), {"http_listen_address"});
  ExpectInvalid(Edited("127.0.0.1:0", ":80"), {"http_listen_address"});
  ExpectInvalid(Edited("http_listen_address: \"127.0.0.1:0\"", ""), {"http_listen_address"});
}

TEST(ConfigTest, NotTextFormat) {
  ExpectInvalid("cluster_name: \"east\"\nthis is not text format {", {"line"});
  ExpectInvalid(Edited("shard_count: 4", "shard_count: \"four\""), {"line"});
  ExpectInvalid(Edited("shard_count: 4", "no_such_field: 4"), {"line", "no_such_field"});
}

TEST(ConfigTest, ParseHostPort) {
  absl::StatusOr<HostPort> hp = ParseHostPort("127.0.0.1:7233");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 7233);
  hp = ParseHostPort("localhost:65535");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->port, 65535);
  EXPECT_FALSE(ParseHostPort("localhost:65536").ok());
  EXPECT_FALSE(ParseHostPort("localhost:").ok());
  EXPECT_FALSE(ParseHostPort("localhost").ok());
}

TEST(ConfigTest, LoadConfigFile) {
  static std::atomic<int> counter{0};
  const std::filesystem::path path =
      std::filesystem::path(::testing::TempDir()) /
      ("config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".cfg");
  {
    std::ofstream out(path);
    out << kValidConfig;
  }
  absl::StatusOr<DaemonConfig> config = LoadConfigFile(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cluster_name(), "east");
}

TEST(ConfigTest, LoadConfigFileMissingPath) {
  const std::string path = ::testing::TempDir() + "/config_test_does_not_exist/xdc.cfg";
  absl::StatusOr<DaemonConfig> config = LoadConfigFile(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(path));
}

}  // namespace
}  // namespace xdc

namespace xdc {
namespace {

TEST(ConfigTest, ClusterNamesMustBeValidInKafkaTopicNames) {
  for (const std::string bad : {"ea st", "east*", "east/1", "Ost-ü"}) {
    ExpectInvalid(Edited("name: \"west\"", "name: \"" + bad + "\""),
                  {"clusters", "may only contain letters, digits"});
  }
}

TEST(ConfigTest, TopicPrefixMustBeValidInKafkaTopicNames) {
  const std::string with_prefix =
      kValidConfig + std::string("kafka { topic_prefix: \"PREFIX\" }\n");
  absl::StatusOr<DaemonConfig> good =
      ParseConfig(absl::StrReplaceAll(with_prefix, {{"PREFIX", "prod-eu.v2"}}), "test.cfg");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->kafka().topic_prefix(), "prod-eu.v2");
  for (const std::string& bad :
       std::vector<std::string>{"prod eu", "prod/eu", std::string(101, 'p')}) {
    ExpectInvalid(absl::StrReplaceAll(with_prefix, {{"PREFIX", bad}}),
                  {"kafka.topic_prefix", "at most 100 letters, digits"});
  }
}

TEST(ConfigTest, ListenHostMustBeAnIpAddress) {
  ExpectInvalid(Edited("127.0.0.1:0", "localhost:7233"),
                {"http_listen_address", "not an IP address"});
  EXPECT_TRUE(ParseConfig(Edited("127.0.0.1:0", "::1:0"), "test.cfg").ok());  // IPv6 loopback
}

// --- Each cluster's Kafka (issue 16): clusters entries, topic replication, embedded address ---

constexpr char kWestEntry[] = "clusters { name: \"west\" initial_failover_version: 2 }";

TEST(ConfigTest, APeerEntryMayNameItsOwnKafka) {
  absl::StatusOr<DaemonConfig> config =
      ParseConfig(Edited(kWestEntry,
                         R"(clusters { name: "west" initial_failover_version: 2
                  kafka { bootstrap_servers: "kafka.west.example:9093"
                          properties { key: "security.protocol" value: "ssl" } } })"),
                  "test.cfg");
  ASSERT_TRUE(config.ok()) << config.status();
  const ClusterConfig* west = FindCluster(*config, "west");
  ASSERT_NE(west, nullptr);
  EXPECT_TRUE(west->has_kafka());
  EXPECT_EQ(west->kafka().bootstrap_servers(), "kafka.west.example:9093");
  // Absent means "the same as mine".
  EXPECT_FALSE(FindCluster(*config, "east")->has_kafka());
}

TEST(ConfigTest, APeerKafkaBlockNeedsBootstrapServers) {
  ExpectInvalid(
      Edited(kWestEntry, R"(clusters { name: "west" initial_failover_version: 2 kafka { } })"),
      {"clusters 'west'.kafka has no bootstrap_servers", "remove the kafka block"});
}

TEST(ConfigTest, APeerKafkaBlockSaysOnlyHowToReachIt) {
  for (const std::string field :
       {"topic_prefix: \"p\"", "replication_factor: 3", "min_insync_replicas: 2",
        "allow_replication_factor_one: true", "embedded_listen_address: \"127.0.0.1:1\""}) {
    const std::string name = field.substr(0, field.find(':'));
    ExpectInvalid(Edited(kWestEntry,
                         "clusters { name: \"west\" initial_failover_version: 2 "
                         "kafka { bootstrap_servers: \"w:9092\" " +
                             field + " } }"),
                  {"clusters 'west'.kafka." + name, "that cluster's own config"});
  }
}

TEST(ConfigTest, APeerKafkaBlocksReservedPropertiesAreRefused) {
  ExpectInvalid(Edited(kWestEntry,
                       R"(clusters { name: "west" initial_failover_version: 2
                            kafka { bootstrap_servers: "w:9092"
                                    properties { key: "acks" value: "1" } } })"),
                {"clusters 'west'.kafka.properties", "'acks' is reserved"});
}

TEST(ConfigTest, ReplicationFactorBounds) {
  const std::string kafka = "http_listen_address: \"127.0.0.1:0\"";
  auto with = [&](const std::string& block) {
    return Edited(kafka, kafka + " kafka { bootstrap_servers: \"k:9092\" " + block + " }");
  };
  ExpectInvalid(with("replication_factor: -1"), {"kafka.replication_factor is -1", "between 1"});
  ExpectInvalid(with("replication_factor: 17"), {"kafka.replication_factor is 17"});
  ExpectInvalid(with("min_insync_replicas: -2"), {"kafka.min_insync_replicas is -2"});
  ExpectInvalid(with("replication_factor: 2 min_insync_replicas: 3"),
                {"kafka.min_insync_replicas is 3 but kafka.replication_factor is 2"});
  ExpectInvalid(
      with("allow_replication_factor_one: true"),
      {"kafka.allow_replication_factor_one is set but kafka.replication_factor is not 1"});
  EXPECT_TRUE(ParseConfig(with("replication_factor: 3 min_insync_replicas: 2"), "t").ok());
  EXPECT_TRUE(
      ParseConfig(with("replication_factor: 1 allow_replication_factor_one: true"), "t").ok());
}

TEST(ConfigTest, EmbeddedListenAddress) {
  const std::string kafka = "http_listen_address: \"127.0.0.1:0\"";
  auto with = [&](const std::string& block) {
    return Edited(kafka, kafka + " kafka { " + block + " }");
  };
  EXPECT_TRUE(ParseConfig(with("embedded_listen_address: \"127.0.0.1:19092\""), "t").ok());
  ExpectInvalid(with("bootstrap_servers: \"k:9092\" embedded_listen_address: \"127.0.0.1:1\""),
                {"kafka.embedded_listen_address is set together with kafka.bootstrap_servers"});
  ExpectInvalid(with("embedded_listen_address: \"0.0.0.0:19092\""),
                {"kafka.embedded_listen_address", "not a loopback address", "127.0.0.1"});
  ExpectInvalid(with("embedded_listen_address: \"localhost\""),
                {"kafka.embedded_listen_address", "not host:port"});
}

TEST(ConfigTest, TopicReplicationForTheBrokersOfAKafka) {
  KafkaConfig kafka;
  // Unset: min(3, brokers), and min.insync.replicas 2 from 3 replicas on.
  absl::StatusOr<TopicReplication> one = TopicReplicationFor(kafka, 1, "k:1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->replication_factor, 1);
  EXPECT_EQ(one->min_insync_replicas, 1);
  absl::StatusOr<TopicReplication> five = TopicReplicationFor(kafka, 5, "k:1");
  ASSERT_TRUE(five.ok()) << five.status();
  EXPECT_EQ(five->replication_factor, 3);
  EXPECT_EQ(five->min_insync_replicas, 2);
  // More replicas than brokers.
  kafka.set_replication_factor(3);
  absl::StatusOr<TopicReplication> above = TopicReplicationFor(kafka, 2, "k:1");
  ASSERT_FALSE(above.ok());
  EXPECT_THAT(above.status().message(),
              HasSubstr("kafka.replication_factor is 3 but the Kafka at k:1 has 2 brokers: set "
                        "kafka.replication_factor to at most 2"));
  // One replica on several brokers: refused unless allowed.
  kafka.set_replication_factor(1);
  absl::StatusOr<TopicReplication> single = TopicReplicationFor(kafka, 3, "k:1");
  ASSERT_FALSE(single.ok());
  EXPECT_EQ(single.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(single.status().message(),
              HasSubstr("Set kafka.replication_factor to 3 (and kafka.min_insync_replicas to 2), "
                        "or set kafka.allow_replication_factor_one: true"));
  kafka.set_allow_replication_factor_one(true);
  EXPECT_TRUE(TopicReplicationFor(kafka, 3, "k:1").ok());
  // min.insync.replicas above what the brokers allow.
  KafkaConfig isr;
  isr.set_min_insync_replicas(2);
  absl::StatusOr<TopicReplication> too_many = TopicReplicationFor(isr, 1, "k:1");
  ASSERT_FALSE(too_many.ok());
  EXPECT_THAT(too_many.status().message(),
              HasSubstr("kafka.min_insync_replicas is 2 but the topics get replication factor 1"));
}

}  // namespace
}  // namespace xdc
