#include "replicator/http_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <list>
#include <optional>
#include <string_view>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "replicator/beast.h"
#include "replicator/json_quote.h"
#include "replicator/logger.h"

namespace xdc {

struct HttpServer::Impl {
  struct Connection {
    std::shared_ptr<tcp::socket> socket;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  Handler handler;
  HttpServerLimits limits;
  std::string bearer_token;  // empty: no check; set before Start, then only read
  ApiProbe* api_probe = nullptr;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  absl::Mutex mu;
  std::list<Connection> connections ABSL_GUARDED_BY(mu);

  void AcceptLoop();
  void Serve(Connection& connection);
  // The 401 answer for a request that needs the bearer token and lacks it, else nullopt.
  [[nodiscard]] std::optional<http::response<http::string_body>> Refusal(
      const http::request<http::string_body>& request) const;
  void ReapFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Counts and times one answered request through the probe.
  void Observe(const std::string& route, const std::string& method, int status,
               std::chrono::steady_clock::time_point started) const;
};

namespace {

constexpr int kAcceptBackoffMs = 100;  // pause after a failed accept()
// Route labels of requests no route handled: refused for the bearer token, or an unknown path.
const std::string kRefusedRoute = "unauthenticated";
const std::string kUnmatchedRoute = "unmatched";

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
  return MakeApiResponse(
      status, "application/json",
      absl::StrCat(R"({"code":)", JsonQuote(code), R"(,"message":)", JsonQuote(message),
                   R"(,"active_cluster":"","retryable":)", retryable ? "true" : "false", "}"));
}

// A request's socket as the SyncReadStream http::read reads through: a read that finds nothing
// to read before `deadline` fails with beast::error::timeout. (Asio's blocking reads retry
// through SO_RCVTIMEO, so each read waits first in a poll of our own, bounded by the time left.)
class DeadlineReader {
 public:
  DeadlineReader(tcp::socket& socket, std::chrono::steady_clock::time_point deadline)
      : socket_(socket), deadline_(deadline) {}

  template <typename MutableBuffers>
  size_t read_some(const MutableBuffers& buffers, beast::error_code& ec) {
    while (true) {
      const int64_t left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now())
              .count();
      if (left <= 0) {
        ec = beast::error::timeout;
        return 0;
      }
      pollfd readable{socket_.native_handle(), POLLIN, 0};
      const int ready = ::poll(&readable, 1, static_cast<int>(std::min<int64_t>(left, INT_MAX)));
      if (ready > 0 || (ready < 0 && errno != EINTR)) break;  // the read reports errors and EOF
    }
    return socket_.read_some(buffers, ec);
  }

  template <typename MutableBuffers>
  size_t read_some(const MutableBuffers& buffers) {
    beast::error_code ec;
    const size_t n = read_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

 private:
  tcp::socket& socket_;
  const std::chrono::steady_clock::time_point deadline_;
};

// Equal contents, in a time that depends only on `expected`'s length (and on nothing the caller
// does not already know), so a client cannot find the token byte by byte by timing refusals.
bool ConstantTimeEquals(std::string_view expected, std::string_view presented) {
  unsigned char difference = expected.size() == presented.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const char other = i < presented.size() ? presented[i] : '\0';
    difference |= static_cast<unsigned char>(expected[i] ^ other);
  }
  return difference == 0;
}

// The token of an "Authorization: Bearer <token>" value (the scheme is case-insensitive; a bare
// "Bearer" carries an empty token), or nullopt for another scheme or none.
std::optional<std::string_view> BearerToken(beast::string_view authorization) {
  constexpr absl::string_view kScheme = "Bearer";
  const absl::string_view value(authorization.data(), authorization.size());
  if (!absl::StartsWithIgnoreCase(value, kScheme)) return std::nullopt;
  const absl::string_view rest = value.substr(kScheme.size());
  if (!rest.empty() && rest.front() != ' ') return std::nullopt;  // e.g. "BearerX"
  const absl::string_view token = absl::StripAsciiWhitespace(rest);
  return std::string_view(token.data(), token.size());
}

constexpr const char* kTokenMissingMessage =
    "this call changes state and needs the API bearer token from the daemon's config "
    "(api.bearer_token or api.bearer_token_file): send the header Authorization: Bearer TOKEN. "
    "xdcctl sends it when given --token TOKEN or the XDC_API_TOKEN environment variable";
constexpr const char* kTokenWrongMessage =
    "the bearer token does not match the daemon's (api.bearer_token or api.bearer_token_file in "
    "its config): check the token given to xdcctl with --token or XDC_API_TOKEN";

}  // namespace

std::optional<http::response<http::string_body>> HttpServer::Impl::Refusal(
    const http::request<http::string_body>& request) const {
  if (bearer_token.empty()) return std::nullopt;
  if (request.method() == http::verb::get || request.method() == http::verb::head) {
    return std::nullopt;  // reads stay open
  }
  const std::optional<std::string_view> presented =
      BearerToken(request[http::field::authorization]);
  if (presented.has_value() && ConstantTimeEquals(bearer_token, *presented)) return std::nullopt;
  if (api_probe != nullptr) api_probe->unauthenticated->Increment();
  http::response<http::string_body> response =
      MakeResponse(ErrorJson(401, "UNAUTHENTICATED",
                             presented.has_value() ? kTokenWrongMessage : kTokenMissingMessage),
                   request.version(), request.keep_alive());
  // RFC 6750: a challenge always; error="invalid_token" when a token was sent but is wrong.
  response.set(http::field::www_authenticate,
               presented.has_value() ? R"(Bearer error="invalid_token")" : "Bearer");
  return response;
}

void HttpServer::Impl::Observe(const std::string& route, const std::string& method, int status,
                               std::chrono::steady_clock::time_point started) const {
  if (api_probe == nullptr || !api_probe->observe_request) return;
  api_probe->observe_request(
      route, method, status,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

void HttpServer::Impl::Serve(Connection& connection) {
  tcp::socket& socket = *connection.socket;
  beast::flat_buffer buffer;
  beast::error_code ec;
  while (!stopping) {
    // Between requests, wait at most the idle timeout for the next one to start. (Asio's
    // blocking reads retry through SO_RCVTIMEO, so the wait is a poll of our own.)
    if (buffer.size() == 0) {
      pollfd readable{socket.native_handle(), POLLIN, 0};
      if (::poll(&readable, 1, limits.idle_timeout_ms) <= 0) break;
    }
    // From its first byte, the whole request (header and body) must arrive in time, however the
    // client paces it: a deadline for the request, not a timeout per read.
    DeadlineReader reader(socket, std::chrono::steady_clock::now() +
                                      std::chrono::milliseconds(limits.request_read_timeout_ms));
    http::request_parser<http::string_body> parser;
    parser.body_limit(limits.max_body_bytes);
    http::read(reader, buffer, parser, ec);
    if (ec == http::error::body_limit) {
      http::write(socket,
                  MakeResponse(ErrorJson(413, "INVALID_ARGUMENT",
                                         absl::StrFormat("request body exceeds %d bytes",
                                                         limits.max_body_bytes)),
                               11, false),
                  ec);
      break;
    }
    if (ec == beast::error::timeout) {
      http::write(socket,
                  MakeResponse(ErrorJson(408, "DEADLINE_EXCEEDED",
                                         absl::StrFormat(
                                             "the request did not arrive whole within %d ms of its "
                                             "first byte (http_request_read_timeout_ms)",
                                             limits.request_read_timeout_ms)),
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
    const auto started = std::chrono::steady_clock::now();
    const http::request<http::string_body>& request = parser.get();
    const bool keep_alive = request.keep_alive();
    const std::string method(request.method_string());
    // The body was read (so the connection stays usable) but is dropped unseen on a refusal.
    if (std::optional<http::response<http::string_body>> refusal = Refusal(request)) {
      Observe(kRefusedRoute, method, refusal->result_int(), started);
      http::write(socket, *refusal, ec);
      if (ec || !keep_alive) break;
      continue;
    }
    ApiResponse api;
    try {
      api = handler(ApiRequest{method, std::string(request.target()), request.body()});
    } catch (const std::exception& e) {
      api = ErrorJson(500, "INTERNAL", "internal error while handling the request");
    }
    // Counted before the answer is sent, so a client that has its answer sees it on /metrics.
    Observe(api.route.empty() ? kUnmatchedRoute : api.route, method, api.status, started);
    http::write(socket, MakeResponse(api, request.version(), keep_alive), ec);
    if (ec || !keep_alive) break;
  }
  // Done before the client can see the connection end, so that once it has, its slot is free
  // for its next connection (the accept loop reaps finished connections before counting).
  connection.done = true;
  socket.shutdown(tcp::socket::shutdown_send, ec);
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
      log::Write(log::Level::kError, "http.accept_failed",
                 absl::StrFormat("accepting an HTTP connection: %s", ec.message().c_str()));
      std::this_thread::sleep_for(std::chrono::milliseconds(kAcceptBackoffMs));
      continue;
    }
    absl::MutexLock lock(&mu);
    ReapFinished();
    if (connections.size() >= limits.max_connections) {
      http::write(*socket,
                  MakeResponse(ErrorJson(503, "UNAVAILABLE",
                                         absl::StrFormat("too many connections (at most %d)",
                                                         limits.max_connections),
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

HttpServer::HttpServer(Handler handler, const HttpServerLimits& limits)
    : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->limits = limits;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::SetProbe(ApiProbe& probe) { impl_->api_probe = &probe; }

void HttpServer::RequireBearerToken(std::string token) { impl_->bearer_token = std::move(token); }

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
