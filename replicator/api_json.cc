#include "replicator/api_json.h"

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "protocol/xdc.pb.h"
#include "replicator/api_errors.h"

namespace xdc {

ApiResponse JsonResponse(const google::protobuf::Message& message, int status) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  ApiResponse response;
  response.status = status;
  if (!google::protobuf::util::MessageToJsonString(message, &response.body, options).ok()) {
    response.status = 500;
    response.body = R"({"code":"INTERNAL","message":"response could not be encoded"})";
  }
  return response;
}

ErrorResponse ErrorFor(const absl::Status& status) {
  ErrorResponse error;
  error.set_code(absl::StatusCodeToString(status.code()));
  error.set_message(std::string(status.message()));
  if (auto active = status.GetPayload(kActiveClusterPayload)) {
    error.set_active_cluster(std::string(*active));
  }
  error.set_retryable(IsRetryable(status));
  if (auto after = status.GetPayload(kRetryAfterMsPayload)) {
    int64_t ms = 0;
    if (absl::SimpleAtoi(std::string(*after), &ms)) error.set_retry_after_ms(ms);
  }
  return error;
}

ApiResponse ErrorResponseFor(const absl::Status& status) {
  return JsonResponse(ErrorFor(status), HttpStatusFor(status.code()));
}

absl::Status ParseJsonBody(const std::string& body, google::protobuf::Message& message) {
  if (body.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the request needs a JSON body (a %s)", message.GetDescriptor()->name()));
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(body, &message, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("malformed JSON body for %s: %s",
                                                      message.GetDescriptor()->name(),
                                                      std::string(status.message())));
  }
  return absl::OkStatus();
}

}  // namespace xdc
