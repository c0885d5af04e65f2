#include "replicator/api_json.h"

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "protocol/xdc.pb.h"
#include "replicator/api_errors.h"
#include "replicator/json_quote.h"

namespace xdc {
namespace {

// The most an error message may take of an answer. Messages quote what a request held (an unknown
// field's name, a bad value, a namespace name from the path), and a request may hold 16 MiB.
constexpr size_t kMaxErrorMessageBytes = 4096;
constexpr size_t kMaxClusterNameBytes = 256;

// `json` (protobuf's printing of a message) with each invalid UTF-8 byte replaced by U+FFFD. The
// printer passes some invalid sequences through (e.g. overlong forms); they can only be inside
// strings, where U+FFFD is valid JSON.
std::string WithValidUtf8(const std::string& json) {
  std::string out;
  out.reserve(json.size());
  for (size_t i = 0; i < json.size();) {
    const size_t length = Utf8SequenceLength(json, i);
    if (length == 0) {
      out += "\ufffd";
      ++i;
    } else {
      out.append(json, i, length);
      i += length;
    }
  }
  return out;
}

}  // namespace

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
  // Every answer is valid JSON, whatever a string field of `message` holds. (ErrorFor already
  // quotes invalid bytes readably; this covers every other message.)
  if (!IsValidUtf8(response.body)) response.body = WithValidUtf8(response.body);
  return response;
}

ErrorResponse ErrorFor(const absl::Status& status) {
  ErrorResponse error;
  error.set_code(absl::StatusCodeToString(status.code()));
  // Messages may quote request content: never its raw bytes (docs/api.md#errors).
  const absl::string_view message = status.message();
  error.set_message(
      QuotableText(std::string_view(message.data(), message.size()), kMaxErrorMessageBytes));
  if (auto active = status.GetPayload(kActiveClusterPayload)) {
    error.set_active_cluster(QuotableText(std::string(*active), kMaxClusterNameBytes));
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
