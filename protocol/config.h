// Loading and validating the daemon's configuration (a DaemonConfig in protobuf text format).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// Bounds on the configuration, named so errors and docs can cite them.
inline constexpr int32_t kMaxShardCount = 4096;
inline constexpr int64_t kMinFailoverVersionIncrement = 2;
// The API bearer token (api.bearer_token or the first line of api.bearer_token_file): at least
// this many bytes, all visible ASCII (it travels in an HTTP header).
inline constexpr size_t kMinApiTokenBytes = 16;

// Topic creation (KafkaConfig.replication_factor, min_insync_replicas): the defaults, and the
// highest replication factor a config may ask for.
inline constexpr int32_t kDefaultReplicationFactor = 3;  // min(this, brokers) when unset
inline constexpr int32_t kDefaultMinInsyncReplicas = 2;  // when the replication factor is >= 3
inline constexpr int32_t kMaxReplicationFactor = 16;

// librdkafka properties xdc sets itself and kafka.properties may not override: its ordering and
// durability guarantees depend on them. `instead` says what to do.
struct ReservedKafkaProperty {
  std::string_view key;
  std::string_view instead;
};
inline constexpr ReservedKafkaProperty kReservedKafkaProperties[] = {
    {"bootstrap.servers", "set kafka.bootstrap_servers instead"},
    {"metadata.broker.list", "set kafka.bootstrap_servers instead"},
    {"enable.idempotence", "xdc's producer is always idempotent (keeps each shard in order)"},
    {"acks", "xdc's producer always uses acks=all (a delivered task survives a broker loss)"},
    {"request.required.acks",
     "xdc's producer always uses acks=all (a delivered task survives a broker loss)"},
    {"transactional.id", "xdc does not use Kafka transactions"},
    {"group.id", "xdc names its consumers itself and keeps their offsets in its own store"},
    {"enable.auto.commit", "xdc keeps consumer offsets in its own store"},
    {"auto.commit.enable", "xdc keeps consumer offsets in its own store"},
    {"enable.auto.offset.store", "xdc keeps consumer offsets in its own store"},
    {"auto.offset.reset", "xdc re-reads from the earliest offset when a stored one is gone"},
    {"enable.partition.eof", "xdc's consumers do not report partition ends"},
    {"opaque", "xdc sets librdkafka's callbacks and their opaque itself"},
};
// Keys with this suffix are librdkafka callbacks, which xdc sets itself.
inline constexpr std::string_view kKafkaCallbackSuffix = "_cb";

// Parses `text` (protobuf text format) and validates it. `source` names the input in errors.
[[nodiscard]] absl::StatusOr<DaemonConfig> ParseConfig(std::string_view text,
                                                       std::string_view source);

// Reads and parses the file at `path`.
[[nodiscard]] absl::StatusOr<DaemonConfig> LoadConfigFile(const std::string& path);

// Every field present and consistent; the error names the field and what to do.
[[nodiscard]] absl::Status ValidateConfig(const DaemonConfig& config);

// A `clusters` entry's `kafka` block (how the other clusters reach that cluster's Kafka):
// bootstrap_servers required, properties as for kafka.properties, no other field. `field` names
// the block in errors (e.g. "clusters 'west'.kafka"). Also used for clusters added online.
[[nodiscard]] absl::Status ValidatePeerKafka(const KafkaConfig& kafka, std::string_view field);

// The replication factor and min.insync.replicas of the topics a cluster creates on its own
// Kafka of `brokers` brokers, from `kafka` (its own KafkaConfig); FAILED_PRECONDITION naming the
// field and what to do when the Kafka cannot honour them (a replication factor above `brokers`,
// or 1 on several brokers without allow_replication_factor_one).
struct TopicReplication {
  int32_t replication_factor = 1;
  int32_t min_insync_replicas = 1;
};
[[nodiscard]] absl::StatusOr<TopicReplication> TopicReplicationFor(const KafkaConfig& kafka,
                                                                   int32_t brokers,
                                                                   std::string_view bootstrap);

// OK, or why `key` may not be set through kafka.properties (kReservedKafkaProperties, callbacks).
[[nodiscard]] absl::Status CheckKafkaProperty(std::string_view key);

// OK, or why `token` cannot be the API bearer token (kMinApiTokenBytes, visible ASCII). The
// error names `source` (e.g. "api.bearer_token") and never contains the token.
[[nodiscard]] absl::Status ValidateApiToken(std::string_view token, std::string_view source);

// The API token held in `contents`, the text of api.bearer_token_file `path`: its first line
// with trailing whitespace removed, validated by ValidateApiToken. Pure: the caller reads the
// file (the daemon does, at start).
[[nodiscard]] absl::StatusOr<std::string> ApiTokenFromFile(std::string_view contents,
                                                           std::string_view path);

// The entry for `name`, or nullptr.
[[nodiscard]] const ClusterConfig* FindCluster(const DaemonConfig& config, std::string_view name);

// Splits "host:port"; port must be 0..65535.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
[[nodiscard]] absl::StatusOr<HostPort> ParseHostPort(std::string_view address);

}  // namespace xdc
