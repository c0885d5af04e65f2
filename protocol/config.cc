#include "protocol/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace xdc {
namespace {

// Collects text-format parse errors instead of letting protobuf print them to stderr.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_error_.empty()) {
      first_error_ = absl::StrFormat("line %d column %d: %s", line + 1, column + 1, message);
    }
  }
  const std::string& first_error() const { return first_error_; }

 private:
  std::string first_error_;
};

// Kafka topic names are at most 249 characters; leave room for ".<cluster>.history".
constexpr size_t kMaxTopicPrefixLength = 100;
constexpr std::string_view kClusterNameChars =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

absl::Status ConfigError(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("config: ", std::string(what)));
}

// Every key of `properties`, checked in key order (a map's order is unspecified, and the error
// should always be the same); `field` names the map in errors.
absl::Status CheckKafkaProperties(const google::protobuf::Map<std::string, std::string>& properties,
                                  std::string_view field) {
  const std::map<std::string, std::string> sorted(properties.begin(), properties.end());
  for (const auto& [key, value] : sorted) {
    if (absl::Status s = CheckKafkaProperty(key); !s.ok()) {
      if (field == "kafka.properties") return ConfigError(std::string(s.message()));
      return ConfigError(absl::StrCat(std::string(field), ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

bool IsLoopback(const std::string& host) {
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return host == "::1";
}

absl::Status ValidateOwnKafka(const KafkaConfig& kafka) {
  if (kafka.topic_prefix().size() > kMaxTopicPrefixLength ||
      kafka.topic_prefix().find_first_not_of(kClusterNameChars) != std::string::npos) {
    return ConfigError(absl::StrFormat(
        "kafka.topic_prefix: '%s' must be at most %d letters, digits, '.', '_' or '-' (it starts "
        "every Kafka topic name)",
        kafka.topic_prefix(), kMaxTopicPrefixLength));
  }
  if (kafka.replication_factor() < 0 || kafka.replication_factor() > kMaxReplicationFactor) {
    return ConfigError(absl::StrFormat(
        "kafka.replication_factor is %d: set it between 1 and %d (e.g. 3), or leave it out for "
        "min(%d, brokers)",
        kafka.replication_factor(), kMaxReplicationFactor, kDefaultReplicationFactor));
  }
  if (kafka.min_insync_replicas() < 0) {
    return ConfigError(absl::StrFormat(
        "kafka.min_insync_replicas is %d: set it to at least 1 (e.g. 2 with replication_factor "
        "3), or leave it out",
        kafka.min_insync_replicas()));
  }
  if (kafka.replication_factor() > 0 && kafka.min_insync_replicas() > kafka.replication_factor()) {
    return ConfigError(absl::StrFormat(
        "kafka.min_insync_replicas is %d but kafka.replication_factor is %d: acks=all could "
        "never be met; set min_insync_replicas to at most the replication factor (e.g. 2 of 3)",
        kafka.min_insync_replicas(), kafka.replication_factor()));
  }
  if (kafka.allow_replication_factor_one() && kafka.replication_factor() != 1) {
    return ConfigError(
        "kafka.allow_replication_factor_one is set but kafka.replication_factor is not 1: remove "
        "it, or set replication_factor: 1 if one replica per partition is what you want");
  }
  if (!kafka.embedded_listen_address().empty()) {
    if (!kafka.bootstrap_servers().empty()) {
      return ConfigError(
          "kafka.embedded_listen_address is set together with kafka.bootstrap_servers: remove "
          "one (embedded_listen_address is for the embedded Kafka, started only without "
          "bootstrap_servers)");
    }
    absl::StatusOr<HostPort> listen = ParseHostPort(kafka.embedded_listen_address());
    if (!listen.ok()) {
      return ConfigError(
          absl::StrCat("kafka.embedded_listen_address: ", listen.status().message()));
    }
    if (!IsLoopback(listen->host)) {
      return ConfigError(absl::StrFormat(
          "kafka.embedded_listen_address: '%s' is not a loopback address: the embedded Kafka's "
          "brokers listen on loopback only, so use 127.0.0.1 (clusters on other machines need a "
          "real Kafka: set kafka.bootstrap_servers)",
          listen->host));
    }
  }
  return CheckKafkaProperties(kafka.properties(), "kafka.properties");
}

}  // namespace

absl::Status ValidatePeerKafka(const KafkaConfig& kafka, std::string_view field) {
  if (kafka.bootstrap_servers().empty()) {
    return ConfigError(absl::StrFormat(
        "%s has no bootstrap_servers: set it to that cluster's Kafka, or remove the kafka block "
        "to read that cluster's topics from this cluster's own Kafka",
        field));
  }
  auto only_own = [&](std::string_view name) {
    return ConfigError(absl::StrFormat(
        "%s.%s: a clusters entry says only how to reach that cluster's Kafka "
        "(bootstrap_servers, properties); set %s in the kafka block of that cluster's own "
        "config (topic_prefix must be the same on every cluster)",
        field, name, name));
  };
  if (!kafka.topic_prefix().empty()) return only_own("topic_prefix");
  if (kafka.replication_factor() != 0) return only_own("replication_factor");
  if (kafka.min_insync_replicas() != 0) return only_own("min_insync_replicas");
  if (kafka.allow_replication_factor_one()) return only_own("allow_replication_factor_one");
  if (!kafka.embedded_listen_address().empty()) return only_own("embedded_listen_address");
  return CheckKafkaProperties(kafka.properties(), absl::StrCat(std::string(field), ".properties"));
}

absl::StatusOr<TopicReplication> TopicReplicationFor(const KafkaConfig& kafka, int32_t brokers,
                                                     std::string_view bootstrap) {
  TopicReplication result;
  const bool explicit_factor = kafka.replication_factor() > 0;
  result.replication_factor = explicit_factor
                                  ? kafka.replication_factor()
                                  : std::max(1, std::min(kDefaultReplicationFactor, brokers));
  if (result.replication_factor > brokers) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "kafka.replication_factor is %d but the Kafka at %s has %d broker%s: set "
        "kafka.replication_factor to at most %d, or add brokers",
        result.replication_factor, bootstrap, brokers, brokers == 1 ? "" : "s", brokers));
  }
  if (result.replication_factor == 1 && brokers > 1 && !kafka.allow_replication_factor_one()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "kafka.replication_factor is 1 but the Kafka at %s has %d brokers: a partition on one "
        "broker loses acknowledged tasks when that broker fails. Set kafka.replication_factor to "
        "%d (and kafka.min_insync_replicas to %d), or set kafka.allow_replication_factor_one: "
        "true to accept that",
        bootstrap, brokers, std::min(kDefaultReplicationFactor, brokers),
        std::min(kDefaultMinInsyncReplicas, std::min(kDefaultReplicationFactor, brokers) - 1)));
  }
  result.min_insync_replicas = kafka.min_insync_replicas() > 0 ? kafka.min_insync_replicas()
                               : result.replication_factor >= kDefaultReplicationFactor
                                   ? kDefaultMinInsyncReplicas
                                   : 1;
  if (result.min_insync_replicas > result.replication_factor) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "kafka.min_insync_replicas is %d but the topics get replication factor %d on the Kafka "
        "at %s (%d broker%s): set kafka.min_insync_replicas to at most %d",
        result.min_insync_replicas, result.replication_factor, bootstrap, brokers,
        brokers == 1 ? "" : "s", result.replication_factor));
  }
  return result;
}

absl::StatusOr<DaemonConfig> ParseConfig(std::string_view text, std::string_view source) {
  DaemonConfig config;
  ErrorCollector errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("config %s is not a valid DaemonConfig in protobuf text format: %s", source,
                        errors.first_error()));
  }
  if (absl::Status s = ValidateConfig(config); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(source), ": ", s.message()));
  }
  return config;
}

absl::StatusOr<DaemonConfig> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrFormat("cannot read config file %s: check the path and permissions", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseConfig(buffer.str(), path);
}

absl::Status ValidateConfig(const DaemonConfig& config) {
  if (config.cluster_name().empty()) {
    return ConfigError("cluster_name is missing: set it to this cluster's name");
  }
  if (config.failover_version_increment() < kMinFailoverVersionIncrement) {
    return ConfigError(absl::StrFormat(
        "failover_version_increment is %d: set it to at least %d and larger than every "
        "initial_failover_version (e.g. 100)",
        config.failover_version_increment(), kMinFailoverVersionIncrement));
  }
  if (config.shard_count() < 1 || config.shard_count() > kMaxShardCount) {
    return ConfigError(
        absl::StrFormat("shard_count is %d: set it between 1 and %d, the same "
                        "on every cluster",
                        config.shard_count(), kMaxShardCount));
  }
  if (config.clusters_size() == 0) {
    return ConfigError("clusters is empty: list every cluster, this one included");
  }
  std::set<std::string> names;
  std::set<int64_t> versions;
  for (const ClusterConfig& cluster : config.clusters()) {
    if (cluster.name().empty()) return ConfigError("a clusters entry has no name");
    if (cluster.name().find_first_not_of(kClusterNameChars) != std::string::npos) {
      return ConfigError(absl::StrFormat(
          "clusters: cluster name '%s' may only contain letters, digits, '.', '_' and '-' (it "
          "names Kafka topics)",
          cluster.name()));
    }
    if (!names.insert(cluster.name()).second) {
      return ConfigError(absl::StrFormat(
          "clusters: cluster name '%s' is listed twice: give each clusters entry a unique name",
          cluster.name()));
    }
    const int64_t v = cluster.initial_failover_version();
    if (v < 1 || v >= config.failover_version_increment()) {
      return ConfigError(
          absl::StrFormat("cluster '%s' has initial_failover_version %d: it must be >= 1 and < "
                          "failover_version_increment (%d)",
                          cluster.name(), v, config.failover_version_increment()));
    }
    if (!versions.insert(v).second) {
      return ConfigError(absl::StrFormat(
          "initial_failover_version %d is used by two clusters: each cluster needs its own", v));
    }
  }
  if (!names.contains(config.cluster_name())) {
    return ConfigError(absl::StrFormat(
        "cluster_name '%s' is not among clusters: add an entry for it", config.cluster_name()));
  }
  if (config.data_dir().empty()) {
    return ConfigError("data_dir is missing: set it to a directory for this cluster's store");
  }
  if (config.http_listen_address().empty()) {
    return ConfigError("http_listen_address is missing: set it to host:port (port 0 = any)");
  }
  absl::StatusOr<HostPort> listen = ParseHostPort(config.http_listen_address());
  if (!listen.ok()) {
    return ConfigError(absl::StrCat("http_listen_address: ", listen.status().message()));
  }
  unsigned char address[sizeof(in6_addr)];
  if (inet_pton(AF_INET, listen->host.c_str(), address) != 1 &&
      inet_pton(AF_INET6, listen->host.c_str(), address) != 1) {
    return ConfigError(absl::StrFormat(
        "http_listen_address: '%s' is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)",
        listen->host));
  }
  if (absl::Status s = ValidateOwnKafka(config.kafka()); !s.ok()) return s;
  for (const ClusterConfig& cluster : config.clusters()) {
    if (!cluster.has_kafka()) continue;
    if (absl::Status s = ValidatePeerKafka(cluster.kafka(),
                                           absl::StrFormat("clusters '%s'.kafka", cluster.name()));
        !s.ok()) {
      return s;
    }
  }
  if (const std::string& level = config.log().level(); !level.empty() && level != "debug" &&
                                                       level != "info" && level != "warning" &&
                                                       level != "error") {
    return ConfigError(
        absl::StrFormat("log.level: '%s' is not one of debug, info, warning, error", level));
  }
  if (const std::string& format = config.log().format();
      !format.empty() && format != "text" && format != "json") {
    return ConfigError(absl::StrFormat("log.format: '%s' is not one of text, json", format));
  }
  const ApiConfig& api = config.api();
  if (!api.bearer_token().empty() && !api.bearer_token_file().empty()) {
    return ConfigError(
        "api.bearer_token and api.bearer_token_file are both set: keep only one (the file keeps "
        "the secret out of the config)");
  }
  if (!api.bearer_token().empty()) {
    if (absl::Status s = ValidateApiToken(api.bearer_token(), "api.bearer_token"); !s.ok()) {
      return ConfigError(std::string(s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckKafkaProperty(std::string_view key) {
  if (key.empty()) {
    return absl::InvalidArgumentError("kafka.properties has an empty key: remove the entry");
  }
  for (const ReservedKafkaProperty& reserved : kReservedKafkaProperties) {
    if (key == reserved.key) {
      return absl::InvalidArgumentError(
          absl::StrFormat("kafka.properties '%s' is reserved (xdc sets it itself): remove it; %s",
                          key, reserved.instead));
    }
  }
  if (key.ends_with(kKafkaCallbackSuffix)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kafka.properties '%s' is a librdkafka callback, which xdc sets itself: remove it", key));
  }
  return absl::OkStatus();
}

absl::Status ValidateApiToken(std::string_view token, std::string_view source) {
  if (token.size() < kMinApiTokenBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s is %d bytes: use a token of at least %d bytes (e.g. the output of `openssl rand -hex "
        "32`)",
        source, token.size(), kMinApiTokenBytes));
  }
  for (const char c : token) {
    // Visible ASCII: what an HTTP header value carries unchanged.
    if (c < '!' || c > '~') {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s contains a space, a control or a non-ASCII character: use only visible ASCII "
          "characters (e.g. the output of `openssl rand -hex 32`)",
          source));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ApiTokenFromFile(std::string_view contents, std::string_view path) {
  std::string_view line = contents.substr(0, contents.find('\n'));
  while (!line.empty() && absl::ascii_isspace(static_cast<unsigned char>(line.back()))) {
    line.remove_suffix(1);
  }
  const std::string source = absl::StrCat("api.bearer_token_file ", std::string(path));
  if (line.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s has no token on its first line: write the token there (at least %d "
                        "visible ASCII characters)",
                        source, kMinApiTokenBytes));
  }
  if (absl::Status s = ValidateApiToken(line, source); !s.ok()) return s;
  return std::string(line);
}

const ClusterConfig* FindCluster(const DaemonConfig& config, std::string_view name) {
  for (const ClusterConfig& cluster : config.clusters()) {
    if (cluster.name() == name) return &cluster;
  }
  return nullptr;
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' is not host:port (e.g. 127.0.0.1:7233)", address));
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(std::string(address.substr(colon + 1)), &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' has no valid port (0..65535)", address));
  }
  return HostPort{std::string(address.substr(0, colon)), static_cast<uint16_t>(port)};
}

}  // namespace xdc
