// The size of the Kafka message xdcd publishes for one append: a framed HistoryMessage carrying a
// ReplicationTask with the append's events (protocol/message_codec.h), built here the way the
// publisher builds it, so the raw limits move messages and records of the same size.
#pragma once

namespace xdc::bench {

// Bytes of one replication message for an append of `events` events with `payload_bytes` of
// attributes each, to a workflow id like the load generator's.
[[nodiscard]] int ReplicationMessageBytes(int events, int payload_bytes);

}  // namespace xdc::bench
