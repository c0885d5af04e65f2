// Fault points: named places in the code that fail on purpose when armed, so tests and the chaos
// suite can inject faults a real system meets (a store write error, a lost, duplicated or
// reordered message).
//
// Inert unless armed: checking one costs an atomic load while nothing is armed. Armed at start
// from the environment variable XDC_FAULT_POINTS (a comma-separated list of names), by tests
// through Arm()/Disarm(), or at run time over xdcd's test-only HTTP API (/v1/fault-points, served
// only when xdcd starts with XDC_ENABLE_FAULT_POINTS=1; docs/api.md). The set of armed points is
// per process: every daemon in one process (in-process tests) sees the same points. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xdc::fault {

// Every write group that adds or replaces a DLQ entry fails (as a full or broken disk would).
inline constexpr std::string_view kStoreWriteDlq = "store.write_dlq";
// Every store write group fails, and changes nothing, with an UNAVAILABLE error whose message
// starts with kStoreWriteErrorMessage: client appends and signals, applied tasks, DLQ and
// namespace changes alike. The store then latches (store/group_committer.h): writes stay refused
// until xdcd restarts, even after the point is disarmed, as after a real disk error.
inline constexpr std::string_view kStoreWriteError = "store.write_error";
inline constexpr std::string_view kStoreWriteErrorMessage =
    "fault point store.write_error: the write failed (as on a full or broken disk)";
// The publisher loses every kPublishLoseEvery-th history task (task id % N == N - 1): it counts
// it as delivered without producing it, as if Kafka had lost it. Standbys see gaps and missing
// task ids; resends repair the gaps.
inline constexpr std::string_view kPublishLoseTask = "publish.lose_task";
inline constexpr int64_t kPublishLoseEvery = 5;
// A cluster asked to resend events refuses (as if it no longer had them).
inline constexpr std::string_view kResendRefuse = "resend.refuse";
// Every KafkaConsumer::Poll returns each message it polled twice, the copy (same topic,
// partition, offset and payload) right after the original, as a broker or client redelivering
// would.
inline constexpr std::string_view kKafkaDuplicateDelivery = "kafka.duplicate_delivery";
// Every KafkaConsumer::Poll swaps adjacent messages of the same topic-partition within the batch
// it returns (that partition's 1st and 2nd, 3rd and 4th, ...): a partition arrives out of offset
// order. (Kafka itself never does this; it checks that consumers do not depend on it blindly.)
inline constexpr std::string_view kKafkaReorderDelivery = "kafka.reorder_delivery";
// "apply.hold.<peer>": appliers of <peer>'s stream apply nothing while armed, as over a link
// from that peer so slow that nothing arrives (the other peers' streams still flow). They keep
// fetching and dropping, so the lag they report (high watermark minus applied) stays current.
inline constexpr std::string_view kApplyHoldPrefix = "apply.hold.";
// "publish.producer_fatal.<cluster>": <cluster>'s publisher's Kafka producer hits a fatal error,
// as an idempotent producer does after a broker lost data it had acknowledged: every later
// message fails until a new producer replaces it. Fires once per arming (the publisher disarms
// the point when it raises the error).
inline constexpr std::string_view kPublishProducerFatalPrefix = "publish.producer_fatal.";

// Every fault point with a fixed name (the prefixes above name families, not listed here).
inline constexpr std::array<std::string_view, 6> kKnownFaultPoints = {
    kStoreWriteDlq, kStoreWriteError,        kPublishLoseTask,
    kResendRefuse,  kKafkaDuplicateDelivery, kKafkaReorderDelivery};

[[nodiscard]] bool Armed(std::string_view name);
void Arm(std::string_view name);
void Disarm(std::string_view name);
// The armed names, sorted.
[[nodiscard]] std::vector<std::string> ArmedNames();
// True for a name in kKnownFaultPoints, or a family's prefix followed by a non-empty cluster name.
// Arm() itself takes any name (a name no code checks does nothing); the HTTP API refuses the
// others so a typo is not mistaken for an armed fault.
[[nodiscard]] bool IsKnown(std::string_view name);

}  // namespace xdc::fault
