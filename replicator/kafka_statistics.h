// librdkafka's statistics JSON, parsed into the fields /metrics exports (replicator/metrics.h).
//
// librdkafka emits the JSON every statistics.interval.ms on the thread that polls the client
// (KafkaStatisticsSink in kafka_client.h). Pure: no I/O, no clock. Thread-safe.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "replicator/kafka_statistics.pb.h"

namespace xdc {

// The fields of RdKafkaStatistics, read from librdkafka's JSON (other fields are ignored).
// Bootstrap entries (nodeid -1: the addresses in bootstrap.servers before the client learned the
// cluster's brokers) are left out of `brokers`: their state says nothing about the cluster.
// INVALID_ARGUMENT when `json` is not a JSON object of that shape.
[[nodiscard]] absl::StatusOr<RdKafkaStatistics> ParseKafkaStatistics(std::string_view json);

}  // namespace xdc
