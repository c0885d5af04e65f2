// HTTP/1.1 server (Boost.Beast, synchronous): one thread per connection, keep-alive, at most
// `max_connections` at once (more are answered 503 and closed). No client holds a connection
// unbounded: one that starts no request for `idle_timeout_ms` is closed, and one that does not
// send a whole request (header and body) within `request_read_timeout_ms` of its first byte is
// answered 408 and closed, so idle, stalled or slow clients cannot hold every slot. With a bearer
// token (RequireBearerToken), mutating requests without it are refused before the handler sees
// them. Every error the server itself answers is an ErrorResponse in valid JSON.
//
// Thread-safety: Start/Stop from one thread; the handler is called concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "replicator/api_handler.h"
#include "replicator/metrics.h"

namespace xdc {

// The bounds of one server (xdcd's come from its Tunables).
struct HttpServerLimits {
  size_t max_connections = 0;       // open at once; more are answered 503 and closed
  size_t max_body_bytes = 0;        // bytes of one request body; more are answered 413
  int idle_timeout_ms = 0;          // ms a connection may wait for a request to start
  int request_read_timeout_ms = 0;  // ms to receive a whole request from its first byte (408)
};

class HttpServer {
 public:
  using Handler = std::function<ApiResponse(const ApiRequest&)>;

  HttpServer(Handler handler, const HttpServerLimits& limits);
  ~HttpServer();

  // Call before Start: every answered request is counted and timed through `probe`
  // (observe_request, with ApiResponse::route), and refusals for the token below too.
  void SetProbe(ApiProbe& probe);
  // Call before Start. With a non-empty `token`, a request whose method is not GET or HEAD must
  // carry "Authorization: Bearer <token>" (compared in constant time); otherwise it is answered
  // 401 UNAUTHENTICATED with "WWW-Authenticate: Bearer", its body is never acted on (the handler
  // is not called), and the probe's unauthenticated counts it. Empty `token`: every request is
  // served.
  void RequireBearerToken(std::string token);

  // Binds host:port (port 0 picks one) and starts accepting. Returns the bound port.
  [[nodiscard]] absl::StatusOr<uint16_t> Start(const std::string& host, uint16_t port);
  // Stops accepting, closes open connections and joins their threads.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xdc
