// xdcd: the xdc replication daemon. Usage: xdcd --config PATH
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/status/statusor.h"
#include "protocol/config.h"
#include "replicator/daemon.h"
#include "replicator/logger.h"
#include "replicator/tunables.h"

namespace {

constexpr int kExitConfigError = 2;
constexpr int kExitStartError = 1;

void PrintUsage() {
  std::printf(
      "usage: xdcd --config PATH\n\n"
      "Runs one xdc cluster: serves the HTTP/JSON API, publishes this cluster's history to\n"
      "Kafka and applies its peers' histories. The config is a DaemonConfig in protobuf text\n"
      "format (see docs/configuration.md). With no kafka.bootstrap_servers, xdcd starts an\n"
      "embedded Kafka (librdkafka's mock cluster) and prints its address so other clusters\n"
      "can join it. Stops cleanly on SIGINT or SIGTERM.\n\n"
      "Environment (tests and chaos runs only): XDC_FAULT_POINTS=NAME,... arms fault points at\n"
      "start; XDC_ENABLE_FAULT_POINTS=1 serves the fault-point API (/v1/fault-points) that arms\n"
      "and disarms them at run time (docs/configuration.md#environment).\n");
}

// XDC_ENABLE_FAULT_POINTS: unset, empty or "0" keeps the fault-point API off, "1" serves it.
absl::StatusOr<xdc::FaultPointApi> FaultPointApiFromEnvironment() {
  const char* value = std::getenv("XDC_ENABLE_FAULT_POINTS");
  const std::string text = value == nullptr ? "" : value;
  if (text.empty() || text == "0") return xdc::FaultPointApi::kDisabled;
  if (text == "1") return xdc::FaultPointApi::kEnabled;
  return absl::InvalidArgumentError(
      "XDC_ENABLE_FAULT_POINTS must be 1 (serve the fault-point API) or 0/unset, got '" + text +
      "'");
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      PrintUsage();
      return 0;
    }
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else {
      std::fprintf(stderr, "xdcd: unknown argument '%s'\n\n", argv[i]);
      PrintUsage();
      return kExitConfigError;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "xdcd: --config PATH is required\n");
    return kExitConfigError;
  }
  absl::StatusOr<xdc::DaemonConfig> config = xdc::LoadConfigFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "xdcd: %s\n", std::string(config.status().message()).c_str());
    return kExitConfigError;
  }
  absl::StatusOr<xdc::FaultPointApi> fault_point_api = FaultPointApiFromEnvironment();
  if (!fault_point_api.ok()) {
    std::fprintf(stderr, "xdcd: %s\n", std::string(fault_point_api.status().message()).c_str());
    return kExitConfigError;
  }
  xdc::Tunables tunables;
  tunables.fault_point_api = *fault_point_api;
  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::string cluster = config->cluster_name();
  // The config was validated: level and format are known names (empty: the defaults).
  xdc::log::Configure(
      cluster, xdc::log::ParseLevel(config->log().level()).value_or(xdc::log::Level::kInfo),
      xdc::log::ParseFormat(config->log().format()).value_or(xdc::log::Format::kText));
  absl::StatusOr<std::unique_ptr<xdc::Daemon>> daemon =
      xdc::Daemon::Start(*std::move(config), tunables);
  if (!daemon.ok()) {
    std::fprintf(stderr, "xdcd: cluster %s failed to start: %s\n", cluster.c_str(),
                 daemon.status().ToString().c_str());
    return kExitStartError;
  }
  if ((*daemon)->embedded_kafka()) {
    std::printf(
        "xdcd: cluster %s started embedded Kafka at %s (other clusters: set "
        "kafka { bootstrap_servers: \"%s\" } in their clusters entry for %s)\n",
        cluster.c_str(), (*daemon)->kafka_bootstrap().c_str(), (*daemon)->kafka_bootstrap().c_str(),
        cluster.c_str());
  }
  if (tunables.fault_point_api == xdc::FaultPointApi::kEnabled) {
    std::printf(
        "xdcd: cluster %s serves the fault-point API (/v1/fault-points) because "
        "XDC_ENABLE_FAULT_POINTS=1: for tests and chaos runs only\n",
        cluster.c_str());
  }
  std::printf("xdcd: cluster %s kafka bootstrap %s\n", cluster.c_str(),
              (*daemon)->kafka_bootstrap().c_str());
  std::printf("xdcd: cluster %s listening on http://%s\n", cluster.c_str(),
              (*daemon)->http_address().c_str());
  std::printf("xdcd: ready\n");
  std::fflush(stdout);
  int received = 0;
  sigwait(&signals, &received);
  std::printf("xdcd: cluster %s stopping (%s)\n", cluster.c_str(), strsignal(received));
  std::fflush(stdout);
  (*daemon)->Stop();
  daemon->reset();  // closes the store
  std::printf(
      "xdcd: cluster %s stopped: in-flight applies finished, publisher drained, store closed\n",
      cluster.c_str());
  return 0;
}
