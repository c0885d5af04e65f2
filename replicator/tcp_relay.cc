#include "replicator/tcp_relay.h"

#include <array>
#include <thread>

#include "absl/strings/str_format.h"
#include "replicator/beast.h"

namespace xdc {
namespace {

// Bytes read from one side before they are written to the other.
constexpr size_t kRelayBufferBytes = 64 * 1024;

// One relayed connection: two pumps (client to target, target to client). Owned by the handlers
// in flight on the relay's thread; closing either side ends both pumps.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket client, asio::io_context& io) : client_(std::move(client)), target_(io) {}

  void Start(const tcp::endpoint& target) {
    target_.async_connect(target, [self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) {
        self->Close();
        return;
      }
      self->Pump(self->client_, self->target_, self->to_target_);
      self->Pump(self->target_, self->client_, self->to_client_);
    });
  }

 private:
  using Buffer = std::array<char, kRelayBufferBytes>;

  void Pump(tcp::socket& from, tcp::socket& to, Buffer& buffer) {
    from.async_read_some(asio::buffer(buffer), [self = shared_from_this(), &from, &to, &buffer](
                                                   const boost::system::error_code& ec,
                                                   size_t bytes) {
      if (ec) {
        self->Close();
        return;
      }
      asio::async_write(to, asio::buffer(buffer.data(), bytes),
                        [self, &from, &to, &buffer](const boost::system::error_code& ec2, size_t) {
                          if (ec2) {
                            self->Close();
                            return;
                          }
                          self->Pump(from, to, buffer);
                        });
    });
  }

  void Close() {
    boost::system::error_code ignored;
    client_.close(ignored);
    target_.close(ignored);
  }

  tcp::socket client_;
  tcp::socket target_;
  Buffer to_target_{};
  Buffer to_client_{};
};

}  // namespace

struct TcpRelay::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  tcp::endpoint target;
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](const boost::system::error_code& ec, tcp::socket client) {
      if (ec) return;  // closed (stopping)
      std::make_shared<Connection>(std::move(client), io)->Start(target);
      Accept();
    });
  }
};

TcpRelay::TcpRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<TcpRelay>> TcpRelay::Start(const std::string& listen_host,
                                                          uint16_t listen_port,
                                                          const std::string& target_host,
                                                          uint16_t target_port) {
  auto impl = std::make_unique<Impl>();
  boost::system::error_code ec;
  const asio::ip::address listen_ip = asio::ip::make_address(listen_host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' is not an IP address: %s", listen_host, ec.message()));
  }
  const asio::ip::address target_ip = asio::ip::make_address(target_host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' is not an IP address: %s", target_host, ec.message()));
  }
  impl->target = tcp::endpoint(target_ip, target_port);
  const tcp::endpoint listen(listen_ip, listen_port);
  impl->acceptor.open(listen.protocol(), ec);
  // A restarted xdcd takes its address back at once, past the old connections' TIME_WAIT.
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(listen, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrFormat("cannot listen on %s:%d: %s", listen_host, listen_port, ec.message()));
  }
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<TcpRelay>(new TcpRelay(std::move(impl)));
}

TcpRelay::~TcpRelay() {
  // Stopping the loop abandons the handlers in flight; destroying the io_context afterwards
  // destroys them, and with them the last references to every connection (closing its sockets).
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t TcpRelay::port() const {
  boost::system::error_code ec;
  const tcp::endpoint local = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : local.port();
}

}  // namespace xdc
