// The raw Kafka limit: xdc's own Kafka adapter (replicator/kafka_client.h: librdkafka, idempotent
// producer with acks=all, assign()-based consumer, the settings xdcd uses) producing messages of
// a given size to a fresh topic while a consumer in another thread reads them back. No xdc code
// runs between the two, so this is the most xdc's replication could move through this Kafka.
//
// Contract: the topic exists (empty) with `partitions` partitions before RunRawKafka. One untimed
// warm-up message per partition goes first (connections, metadata, first fetch); then messages go
// round-robin over the partitions. The run ends when the consumer has read every message, or
// fails with DEADLINE_EXCEEDED after kRawKafkaTimeout, or with the first delivery error.
// Thread-safety: RunRawKafka runs its own producer and consumer threads; call it from one thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace xdc::bench {

inline constexpr absl::Duration kRawKafkaTimeout = absl::Minutes(3);
// The consumer's fetch.wait.max.ms, as xdcd's appliers use in tests (low: latency over batching).
inline constexpr int kRawKafkaFetchWaitMs = 10;

struct RawKafkaOptions {
  std::string bootstrap;
  std::string topic;
  int32_t partitions = 1;
  int64_t messages = 0;
  int message_bytes = 0;
};

struct RawKafkaResult {
  int64_t messages = 0;
  int message_bytes = 0;
  double produce_seconds = 0;      // first produce to last delivery report
  double end_to_end_seconds = 0;   // first produce to last message consumed
  double messages_per_second = 0;  // messages / end_to_end_seconds
};

[[nodiscard]] absl::StatusOr<RawKafkaResult> RunRawKafka(const RawKafkaOptions& options);

}  // namespace xdc::bench
