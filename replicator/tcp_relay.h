// A TCP relay: accepts connections on a fixed address and forwards each, byte for byte, to a
// target address. It gives the embedded Kafka (librdkafka's mock cluster, whose brokers listen
// on a free loopback port picked at start) a fixed bootstrap address that peers can name in
// their config (KafkaConfig.embedded_listen_address, docs/configuration.md). A client that
// bootstraps through it learns the brokers' own addresses from Kafka's metadata and talks to
// them directly; the relay only carries the bootstrap connections.
//
// Thread-safety: Start and the destructor from one thread; the relay runs its own thread (Boost
// Asio), which owns every connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace xdc {

class TcpRelay {
 public:
  // Listens on listen_host:listen_port (port 0: a free one) and forwards every connection to
  // target_host:target_port. UNAVAILABLE, naming the address, when it cannot listen there (e.g.
  // the port is in use).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<TcpRelay>> Start(
      const std::string& listen_host, uint16_t listen_port, const std::string& target_host,
      uint16_t target_port);
  // Stops accepting, closes every relayed connection and joins the thread.
  ~TcpRelay();
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

  [[nodiscard]] uint16_t port() const;

 private:
  struct Impl;
  explicit TcpRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace xdc
