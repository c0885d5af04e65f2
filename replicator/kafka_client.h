// The Kafka adapter: the only place that calls librdkafka. Errors come out as absl::Status.
//
//   EmbeddedKafka  librdkafka's mock cluster in this process (real Kafka protocol on loopback)
//   EnsureTopics   creates topics through the Admin API if they do not exist
//   KafkaProducer  idempotent producer, acks=all; delivery reports through a callback
//   KafkaConsumer  assign()-based consumer (no group rebalancing, no committed offsets)
//
// Every client (admin, producer, consumer) gets the deployment's KafkaProperties after xdc's own
// settings: security.protocol, ssl.*, sasl.* and other librdkafka properties pass through. The
// embedded mock cluster's own handle does not (it is the broker, not a client of it).
//
// librdkafka's own log lines go to the daemon's log (replicator/logger.h) as "kafka NAME: FACILITY:
// ...", rate-limited per facility.
//
// Thread-safety: a KafkaProducer may be used from any thread, but its delivery callback runs
// on the thread that calls Poll(). A KafkaConsumer belongs to one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_topic_s rd_kafka_topic_t;
typedef struct rd_kafka_mock_cluster_s rd_kafka_mock_cluster_t;

namespace xdc {

// librdkafka properties set on every client after xdc's own (kafka.properties in the config).
// A key in kReservedKafkaProperties (protocol/config.h) or a callback is refused, as are keys and
// values librdkafka does not accept: creating the client fails with INVALID_ARGUMENT naming the
// key (secret values, e.g. sasl.password, never appear in errors). Tests against the mock pass {}.
using KafkaProperties = std::map<std::string, std::string>;
[[nodiscard]] KafkaProperties KafkaPropertiesOf(const KafkaConfig& config);

// Topic names: each cluster produces to its own pair, "<prefix>.<cluster>.history" and
// "<prefix>.<cluster>.control". `prefix` is KafkaConfig.topic_prefix; empty means
// kDefaultTopicPrefix.
inline constexpr std::string_view kDefaultTopicPrefix = "xdc";
[[nodiscard]] std::string HistoryTopic(std::string_view cluster, std::string_view prefix = "");
[[nodiscard]] std::string ControlTopic(std::string_view cluster, std::string_view prefix = "");

// Where a client's librdkafka statistics go: every `interval_ms` (0: never) librdkafka hands its
// statistics JSON (replicator/kafka_statistics.h parses it) to `on_json`, on the thread that
// polls the client (KafkaProducer::Poll, KafkaConsumer::Poll). statistics.interval.ms in
// kafka.properties overrides `interval_ms`.
struct KafkaStatisticsSink {
  int interval_ms = 0;
  std::function<void(std::string_view json)> on_json;
};

// The Kafka request types whose handling the mock can be told to fail (PushRequestErrors).
enum class MockApi { kProduce, kFetch, kMetadata };

class EmbeddedKafka {
 public:
  // Retriable errors PushRequestErrors may queue in one call, at most.
  static constexpr int kMaxPushedRequestErrors = 1000;
  // The longest round-trip delay SetBrokerRtt takes, in ms.
  static constexpr int kMaxBrokerRttMs = 60000;

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<EmbeddedKafka>> Start(int broker_count);
  ~EmbeddedKafka();
  [[nodiscard]] const std::string& bootstrap() const { return bootstrap_; }
  [[nodiscard]] int broker_count() const { return broker_count_; }
  // Creates a topic through the mock's own API (the mock does not serve CreateTopics).
  [[nodiscard]] absl::Status CreateTopic(const std::string& name, int32_t partitions);

  // Fault injection through the mock's own API (xdc-kafka-mock's control API uses these). Broker
  // ids are 1..broker_count(); another id is INVALID_ARGUMENT. Thread-safe (the mock cluster runs
  // its own thread and takes these as requests to it).
  //
  // A broker set down closes its client connections and refuses new ones until set up again;
  // its partitions are not moved, so their clients stall (and retry) meanwhile.
  [[nodiscard]] absl::Status SetBrokerDown(int32_t broker_id);
  [[nodiscard]] absl::Status SetBrokerUp(int32_t broker_id);
  // Delays every response of the broker by `rtt_ms` (0 to kMaxBrokerRttMs; 0 clears it).
  [[nodiscard]] absl::Status SetBrokerRtt(int32_t broker_id, int rtt_ms);
  // The next `count` requests of type `api` (1 to kMaxPushedRequestErrors, whichever broker gets
  // them) are answered with a retriable error: NOT_LEADER_OR_FOLLOWER for produce and fetch
  // (clients refresh metadata and retry), REQUEST_TIMED_OUT for metadata. Clients recover by
  // themselves once the errors are used up.
  [[nodiscard]] absl::Status PushRequestErrors(MockApi api, int count);

 private:
  EmbeddedKafka() = default;
  [[nodiscard]] absl::Status CheckBroker(int32_t broker_id) const;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  int broker_count_ = 0;
  std::string bootstrap_;
};

struct TopicSpec {
  std::string name;
  int32_t partitions = 1;
};

// Checks every topic exists with at least its partitions, creating missing ones through the
// Admin API with the replication factor and min.insync.replicas `topic_settings` (the cluster's
// own KafkaConfig) gives on this Kafka (TopicReplicationFor, protocol/config.h: an impossible
// setting is FAILED_PRECONDITION, checked whether or not a topic is missing). An existing topic
// with fewer partitions than asked is an error (FAILED_PRECONDITION): shard_count cannot change
// under a running deployment. Only a cluster's own topics are created: a peer's topics are the
// peer's to create on its own Kafka.
[[nodiscard]] absl::Status EnsureTopics(
    const std::string& bootstrap, const std::vector<TopicSpec>& topics, int timeout_ms,
    const KafkaProperties& properties = {},
    const KafkaConfig& topic_settings = KafkaConfig::default_instance());

class KafkaProducer {
 public:
  // Called from Poll() once per produced message with the token given to Produce().
  using DeliveryFn = std::function<void(uint64_t token, const absl::Status& status)>;

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(
      const std::string& bootstrap, const std::string& client_id, DeliveryFn on_delivery,
      const KafkaProperties& properties = {}, KafkaStatisticsSink statistics = {});
  ~KafkaProducer();

  // Queues `payload` (copied) for `topic`/`partition`. RESOURCE_EXHAUSTED when the local queue is
  // full (poll and retry).
  [[nodiscard]] absl::Status Produce(const std::string& topic, int32_t partition,
                                     std::string_view payload, uint64_t token);
  // Serves delivery reports, waiting up to `timeout_ms` for one.
  void Poll(int timeout_ms);
  // Waits until every queued message was delivered or failed.
  [[nodiscard]] absl::Status Flush(int timeout_ms);
  // INTERNAL with librdkafka's reason once the producer hit a fatal error (the idempotent
  // producer cannot keep its guarantees, e.g. after a broker lost acknowledged data): from then
  // on every message fails, and only a new producer can publish again. Thread-safe.
  [[nodiscard]] absl::Status FatalError() const;
  // Makes librdkafka raise a fatal error on this producer as it would on its own
  // (rd_kafka_test_fatal_error): for fault injection (fault::kPublishProducerFatal).
  [[nodiscard]] absl::Status RaiseFatalErrorForTesting(const std::string& reason);
  // Asks the cluster for its broker list: UNAVAILABLE when no broker answers within
  // `timeout_ms`. Thread-safe (a readiness probe calls it from an HTTP thread).
  [[nodiscard]] absl::Status CheckReachable(int timeout_ms);
  // Learns the partitions of `topics` now, waiting up to `timeout_ms`, so that the first message
  // to each is sent at once. Without it librdkafka learns a topic first produced to only on its
  // next 1 s topic scan, and the first replication after a start waits up to a second. Call before
  // the first Produce; UNAVAILABLE when the cluster does not answer or reports an error for a
  // topic (producing still works then, with that delay). Not thread-safe.
  [[nodiscard]] absl::Status LearnTopics(const std::vector<std::string>& topics, int timeout_ms);

 private:
  KafkaProducer() = default;
  static void OnDelivery(rd_kafka_t* rk, const void* message, void* opaque);
  rd_kafka_t* rk_ = nullptr;
  std::vector<rd_kafka_topic_t*> topics_;  // LearnTopics' handles, released before rk_
  DeliveryFn on_delivery_;
  KafkaStatisticsSink statistics_;
};

struct KafkaMessage {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string payload;
};

class KafkaConsumer {
 public:
  struct Assignment {
    std::string topic;
    int32_t partition = 0;
    int64_t offset = 0;  // next offset to read
  };

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KafkaConsumer>> Create(
      const std::string& bootstrap, const std::string& group_id, int fetch_wait_max_ms,
      const KafkaProperties& properties = {}, KafkaStatisticsSink statistics = {});
  ~KafkaConsumer();

  [[nodiscard]] absl::Status Assign(const std::vector<Assignment>& assignments);
  // Waits up to `timeout_ms` for the first message, then takes what is ready, up to `max`.
  // Transient broker errors are logged and yield fewer (or no) messages. Each partition's
  // messages come in offset order, once, unless a fault point says otherwise
  // (chaos/fault_points.h): kafka.reorder_delivery swaps a partition's adjacent messages,
  // kafka.duplicate_delivery returns each message twice (then at most max(max, 2) messages).
  [[nodiscard]] std::vector<KafkaMessage> Poll(int timeout_ms, size_t max);
  // The partition's end offset as last reported by the broker, if known.
  [[nodiscard]] std::optional<int64_t> HighWatermark(const std::string& topic, int32_t partition);
  // Asks the broker for the partition's (first, end) offsets now.
  [[nodiscard]] absl::StatusOr<std::pair<int64_t, int64_t>> QueryWatermarks(
      const std::string& topic, int32_t partition, int timeout_ms);
  // The topics of `topics` this consumer's Kafka does not have (or has with fewer partitions
  // than asked), by one metadata request; UNAVAILABLE if the Kafka does not answer within
  // `timeout_ms`.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> LackingTopics(
      const std::vector<TopicSpec>& topics, int timeout_ms);
  // The partition's first offset (its log start: retention or DeleteRecords move it up) as last
  // reported by the broker in a fetch, if known.
  [[nodiscard]] std::optional<int64_t> LowWatermark(const std::string& topic, int32_t partition);

 private:
  KafkaConsumer() = default;
  rd_kafka_t* rk_ = nullptr;
  std::string bootstrap_;  // for errors
  KafkaStatisticsSink statistics_;
};

}  // namespace xdc
