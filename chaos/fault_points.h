// Fault points: named places in the code that fail on purpose when armed, so tests and the chaos
// suite can inject faults a real system meets (a store write error, a lost message).
//
// Inert unless armed: checking one costs an atomic load while nothing is armed. Armed at start
// from the environment variable XDC_FAULT_POINTS (a comma-separated list of names), or by tests
// through Arm()/Disarm(). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace xdc::fault {

// Every write group that adds or replaces a DLQ entry fails (as a full or broken disk would).
inline constexpr std::string_view kStoreWriteDlq = "store.write_dlq";
// The publisher loses every kPublishLoseEvery-th history task (task id % N == N - 1): it counts
// it as delivered without producing it, as if Kafka had lost it. Standbys see gaps and missing
// task ids; resends repair the gaps.
inline constexpr std::string_view kPublishLoseTask = "publish.lose_task";
inline constexpr int64_t kPublishLoseEvery = 5;
// A cluster asked to resend events refuses (as if it no longer had them).
inline constexpr std::string_view kResendRefuse = "resend.refuse";
// "apply.hold.<peer>": appliers of <peer>'s stream consume nothing while armed, as over a link
// from that peer so slow that nothing arrives (the other peers' streams still flow).
inline constexpr std::string_view kApplyHoldPrefix = "apply.hold.";

[[nodiscard]] bool Armed(std::string_view name);
void Arm(std::string_view name);
void Disarm(std::string_view name);

}  // namespace xdc::fault
