#include "replicator/http_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <list>
#include <thread>

#include "absl/strings/str_format.h"
#include "replicator/beast.h"

namespace xdc {

struct HttpServer::Impl {
  struct Connection {
    std::shared_ptr<tcp::socket> socket;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  Handler handler;
  size_t max_connections;
  size_t max_body_bytes;
  int idle_timeout_ms;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  absl::Mutex mu;
  std::list<Connection> connections ABSL_GUARDED_BY(mu);

  void AcceptLoop();
  void Serve(Connection& connection);
  void ReapFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

namespace {

constexpr int kAcceptBackoffMs = 100;  // pause after a failed accept()

http::response<http::string_body> MakeResponse(const ApiResponse& api, unsigned version,
                                               bool keep_alive) {
  http::response<http::string_body> response{static_cast<http::status>(api.status), version};
  response.set(http::field::server, "xdcd");
  response.set(http::field::content_type, api.content_type);
  response.keep_alive(keep_alive);
  response.body() = api.body;
  response.prepare_payload();
  return response;
}

// Errors raised before a request reaches the API handler (same shape as ErrorResponse).
ApiResponse ErrorJson(int status, const std::string& code, const std::string& message,
                      bool retryable = false) {
  return ApiResponse{status, "application/json",
                     absl::StrFormat(R"({"code":"%s","message":"%s","active_cluster":"",)"
                                     R"("retryable":%s})",
                                     code, message, retryable ? "true" : "false")};
}

}  // namespace

void HttpServer::Impl::Serve(Connection& connection) {
  tcp::socket& socket = *connection.socket;
  beast::flat_buffer buffer;
  beast::error_code ec;
  while (!stopping) {
    // Between requests, wait at most the idle timeout for the next one to start. (Asio's
    // blocking reads retry through SO_RCVTIMEO, so the wait is a poll of our own.)
    if (buffer.size() == 0) {
      pollfd readable{socket.native_handle(), POLLIN, 0};
      if (::poll(&readable, 1, idle_timeout_ms) <= 0) break;
    }
    http::request_parser<http::string_body> parser;
    parser.body_limit(max_body_bytes);
    http::read(socket, buffer, parser, ec);
    if (ec == http::error::body_limit) {
      http::write(
          socket,
          MakeResponse(ErrorJson(413, "INVALID_ARGUMENT",
                                 absl::StrFormat("request body exceeds %d bytes", max_body_bytes)),
                       11, false),
          ec);
      break;
    }
    if (ec) {
      if (ec != http::error::end_of_stream && ec != asio::error::eof &&
          ec != asio::error::connection_reset && !stopping) {
        http::write(
            socket,
            MakeResponse(ErrorJson(400, "INVALID_ARGUMENT", "malformed HTTP request"), 11, false),
            ec);
      }
      break;
    }
    const http::request<http::string_body>& request = parser.get();
    ApiResponse api;
    try {
      api = handler(ApiRequest{std::string(request.method_string()), std::string(request.target()),
                               request.body()});
    } catch (const std::exception& e) {
      api = ErrorJson(500, "INTERNAL", "internal error while handling the request");
    }
    const bool keep_alive = request.keep_alive();
    http::write(socket, MakeResponse(api, request.version(), keep_alive), ec);
    if (ec || !keep_alive) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  connection.done = true;
}

void HttpServer::Impl::ReapFinished() {
  for (auto it = connections.begin(); it != connections.end();) {
    if (it->done) {
      it->thread.join();
      it = connections.erase(it);
    } else {
      ++it;
    }
  }
}

void HttpServer::Impl::AcceptLoop() {
  while (!stopping) {
    auto socket = std::make_shared<tcp::socket>(io);
    beast::error_code ec;
    acceptor.accept(*socket, ec);
    if (stopping) break;
    if (ec) {
      // E.g. out of file descriptors: back off instead of spinning on the failing accept.
      std::fprintf(stderr, "xdcd: accepting an HTTP connection: %s\n", ec.message().c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(kAcceptBackoffMs));
      continue;
    }
    absl::MutexLock lock(&mu);
    ReapFinished();
    if (connections.size() >= max_connections) {
      http::write(*socket,
                  MakeResponse(ErrorJson(503, "UNAVAILABLE",
                                         absl::StrFormat("too many connections (at most %d)",
                                                         max_connections),
                                         /*retryable=*/true),
                               11, false),
                  ec);
      continue;
    }
    Connection& connection = connections.emplace_back();
    connection.socket = std::move(socket);
    connection.thread = std::thread([this, &connection] { Serve(connection); });
  }
}

HttpServer::HttpServer(Handler handler, size_t max_connections, size_t max_body_bytes,
                       int idle_timeout_ms)
    : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->max_connections = max_connections;
  impl_->max_body_bytes = max_body_bytes;
  impl_->idle_timeout_ms = idle_timeout_ms;
}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<uint16_t> HttpServer::Start(const std::string& host, uint16_t port) {
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrFormat("http_listen_address host '%s' is not an IP address", host));
  }
  const tcp::endpoint endpoint(address, port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrFormat("cannot listen on %s:%d: %s", host, port, ec.message()));
  }
  const uint16_t bound = impl_->acceptor.local_endpoint().port();
  impl_->accept_thread = std::thread([this] { impl_->AcceptLoop(); });
  return bound;
}

void HttpServer::Stop() {
  if (!impl_->accept_thread.joinable()) return;
  impl_->stopping = true;
  // Wakes the blocked accept(); closing the acceptor from another thread would not be safe.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  impl_->accept_thread.join();
  beast::error_code ec;
  impl_->acceptor.close(ec);
  absl::MutexLock lock(&impl_->mu);
  for (Impl::Connection& connection : impl_->connections) {
    ::shutdown(connection.socket->native_handle(), SHUT_RDWR);
  }
  for (Impl::Connection& connection : impl_->connections) connection.thread.join();
  impl_->connections.clear();
}

}  // namespace xdc
