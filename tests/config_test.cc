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

}  // namespace
}  // namespace xdc
