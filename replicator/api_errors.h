// Extra facts an API error carries, as absl::Status payloads, so the HTTP layer can fill
// ErrorResponse.active_cluster and ErrorResponse.retryable and clients can read them back.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/cord.h"

namespace xdc {

// The cluster that accepts writes for the namespace (set when a write went elsewhere).
inline constexpr char kActiveClusterPayload[] = "xdc.active_cluster";
// Present when the same request may succeed if retried unchanged (e.g. during a handover).
// Errors without it need a change first: another cluster, a new request, or an operator.
inline constexpr char kRetryablePayload[] = "xdc.retryable";

// With a retryable error: a hint of when to retry, in ms (ErrorResponse.retry_after_ms).
inline constexpr char kRetryAfterMsPayload[] = "xdc.retry_after_ms";

inline void MarkRetryable(absl::Status& status) {
  status.SetPayload(kRetryablePayload, absl::Cord("true"));
}
[[nodiscard]] inline bool IsRetryable(const absl::Status& status) {
  return status.GetPayload(kRetryablePayload).has_value();
}

}  // namespace xdc
