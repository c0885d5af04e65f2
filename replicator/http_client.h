// A small synchronous HTTP/1.1 client (Boost.Beast) with keep-alive, used by xdcctl and tests.
//
// Not thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace xdc {

struct HttpResult {
  int status = 0;
  std::string body;
};

class HttpClient {
 public:
  // Bound on connecting plus one request/response exchange.
  static constexpr std::chrono::milliseconds kDefaultTimeout{30000};

  // `address` is host:port or http://host:port. A request that takes longer than `timeout`
  // fails with DEADLINE_EXCEEDED.
  explicit HttpClient(std::string address, std::chrono::milliseconds timeout = kDefaultTimeout);
  ~HttpClient();

  // Sends one request; reconnects once if a kept-alive connection was closed by the server.
  // UNAVAILABLE when the server cannot be reached.
  [[nodiscard]] absl::StatusOr<HttpResult> Request(const std::string& method,
                                                   const std::string& target,
                                                   const std::string& body = "");

  // JSON helpers: sends `request` (if given) as JSON and parses a 2xx body into `response`.
  // A non-2xx answer becomes a status carrying the server's ErrorResponse message.
  [[nodiscard]] absl::Status Call(const std::string& method, const std::string& target,
                                  const google::protobuf::Message* request,
                                  google::protobuf::Message& response);

  [[nodiscard]] const std::string& address() const { return address_; }

  // Sent as "Authorization: Bearer <token>" on every later request; empty: no such header. The
  // daemon asks for it on mutating calls when its config has api.bearer_token[_file]; a missing
  // or wrong token is answered 401, which Call() returns as UNAUTHENTICATED.
  void set_bearer_token(std::string token) { bearer_token_ = std::move(token); }

 private:
  struct Impl;
  std::string address_;
  std::chrono::milliseconds timeout_;
  std::string bearer_token_;
  std::unique_ptr<Impl> impl_;
};

// protobuf JSON with field names as in the .proto; the error says what did not parse.
[[nodiscard]] absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);
[[nodiscard]] absl::Status FromJson(const std::string& json, google::protobuf::Message& message);

}  // namespace xdc
