#include "replicator/http_client.h"

#include <poll.h>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "protocol/config.h"
#include "protocol/xdc.pb.h"
#include "replicator/api_errors.h"
#include "replicator/beast.h"

namespace xdc {

struct HttpClient::Impl {
  asio::io_context io;
  std::unique_ptr<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};

HttpClient::HttpClient(std::string address, std::chrono::milliseconds timeout)
    : timeout_(timeout), impl_(std::make_unique<Impl>()) {
  if (absl::StartsWith(address, "http://")) address = address.substr(7);
  while (!address.empty() && address.back() == '/') address.pop_back();
  address_ = std::move(address);
}

HttpClient::~HttpClient() = default;

absl::StatusOr<HttpResult> HttpClient::Request(const std::string& method, const std::string& target,
                                               const std::string& body) {
  absl::StatusOr<HostPort> host_port = ParseHostPort(address_);
  if (!host_port.ok()) return host_port.status();
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (impl_->stream != nullptr) {
      // A kept-alive connection the server closed meanwhile (its idle timeout) reads as
      // readable with nothing to say: reconnect before sending rather than after.
      pollfd probe{impl_->stream->socket().native_handle(), POLLIN, 0};
      if (::poll(&probe, 1, 0) != 0) impl_->stream.reset();
    }
    const bool reused = impl_->stream != nullptr;
    beast::error_code ec;
    if (!reused) {
      tcp::resolver resolver(impl_->io);
      auto endpoints = resolver.resolve(host_port->host, std::to_string(host_port->port), ec);
      if (ec) {
        return absl::UnavailableError(
            absl::StrFormat("cannot resolve %s: %s", address_, ec.message()));
      }
      impl_->stream = std::make_unique<beast::tcp_stream>(impl_->io);
      impl_->stream->expires_after(timeout_);
      impl_->stream->connect(endpoints, ec);
      if (ec) {
        impl_->stream.reset();
        return absl::UnavailableError(absl::StrFormat(
            "cannot connect to xdcd at %s: %s (is it running?)", address_, ec.message()));
      }
      impl_->buffer.clear();
    }
    http::request<http::string_body> request{method == "POST" ? http::verb::post : http::verb::get,
                                             target, 11};
    request.set(http::field::host, host_port->host);
    request.set(http::field::content_type, "application/json");
    if (!bearer_token_.empty()) request.set(http::field::authorization, "Bearer " + bearer_token_);
    request.keep_alive(true);
    request.body() = body;
    request.prepare_payload();
    impl_->stream->expires_after(timeout_);
    http::write(*impl_->stream, request, ec);
    const bool sent = !ec;
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    if (!ec) http::read(*impl_->stream, impl_->buffer, parser, ec);
    if (ec) {
      impl_->stream.reset();
      // A kept-alive connection that was closed: try once more on a new one. A POST that was
      // sent is not retried, since the server may have applied it (signals have no guard).
      if (reused && attempt == 0 && (method == "GET" || !sent)) continue;
      if (ec == beast::error::timeout) {
        return absl::DeadlineExceededError(absl::StrFormat(
            "request to %s got no answer within %d ms", address_, timeout_.count()));
      }
      return absl::UnavailableError(
          absl::StrFormat("request to %s failed: %s", address_, ec.message()));
    }
    HttpResult result;
    result.status = static_cast<int>(parser.get().result_int());
    result.body = std::move(parser.get().body());
    if (!parser.get().keep_alive()) impl_->stream.reset();
    return result;
  }
  return absl::UnavailableError("unreachable");
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return absl::InternalError(std::string(status.message()));
  return json;
}

absl::Status FromJson(const std::string& json, google::protobuf::Message& message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // newer servers may add fields
  auto status = google::protobuf::util::JsonStringToMessage(json, &message, options);
  if (!status.ok()) {
    return absl::DataLossError(absl::StrFormat("response is not a valid %s: %s",
                                               message.GetDescriptor()->name(),
                                               std::string(status.message())));
  }
  return absl::OkStatus();
}

namespace {

absl::StatusCode CodeFromName(const std::string& name) {
  for (int code = 0; code <= 16; ++code) {
    if (absl::StatusCodeToString(static_cast<absl::StatusCode>(code)) == name) {
      return static_cast<absl::StatusCode>(code);
    }
  }
  return absl::StatusCode::kUnknown;
}

}  // namespace

absl::Status HttpClient::Call(const std::string& method, const std::string& target,
                              const google::protobuf::Message* request,
                              google::protobuf::Message& response) {
  std::string body;
  if (request != nullptr) {
    absl::StatusOr<std::string> json = ToJson(*request);
    if (!json.ok()) return json.status();
    body = *std::move(json);
  }
  absl::StatusOr<HttpResult> result = Request(method, target, body);
  if (!result.ok()) return result.status();
  if (result->status / 100 != 2) {
    ErrorResponse error;
    if (!FromJson(result->body, error).ok() || error.code().empty()) {
      return absl::UnknownError(
          absl::StrFormat("HTTP %d from %s: %s", result->status, address_, result->body));
    }
    absl::Status status(CodeFromName(error.code()), error.message());
    if (!error.active_cluster().empty()) {
      status.SetPayload(kActiveClusterPayload, absl::Cord(error.active_cluster()));
    }
    if (error.retryable()) MarkRetryable(status);
    return status;
  }
  return FromJson(result->body, response);
}

}  // namespace xdc
