// JSON answers of the HTTP API, shared by the route handlers (api_handler.cc and the
// membership/migration routes in migration_api.cc): protobuf's JSON mapping with the proto field
// names, errors as an ErrorResponse with the HTTP status of the absl code (docs/api.md).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "protocol/xdc.pb.h"
#include "replicator/api_handler.h"

namespace xdc {

// `message` as JSON with `status` (500 with an INTERNAL error if it cannot be encoded).
[[nodiscard]] ApiResponse JsonResponse(const google::protobuf::Message& message, int status = 200);

// The ErrorResponse of a non-OK `status` (active cluster and retry hints from its payloads).
[[nodiscard]] ErrorResponse ErrorFor(const absl::Status& status);

// ErrorFor(status) as JSON, with the HTTP status of its code.
[[nodiscard]] ApiResponse ErrorResponseFor(const absl::Status& status);

// Parses a JSON request body into `message`; INVALID_ARGUMENT naming the message if it is empty,
// malformed or has unknown fields.
[[nodiscard]] absl::Status ParseJsonBody(const std::string& body,
                                         google::protobuf::Message& message);

}  // namespace xdc
