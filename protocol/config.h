// Loading and validating the daemon's configuration (a DaemonConfig in protobuf text format).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// Bounds on the configuration, named so errors and docs can cite them.
inline constexpr int32_t kMaxShardCount = 4096;
inline constexpr int64_t kMinFailoverVersionIncrement = 2;

// Parses `text` (protobuf text format) and validates it. `source` names the input in errors.
[[nodiscard]] absl::StatusOr<DaemonConfig> ParseConfig(std::string_view text,
                                                       std::string_view source);

// Reads and parses the file at `path`.
[[nodiscard]] absl::StatusOr<DaemonConfig> LoadConfigFile(const std::string& path);

// Every field present and consistent; the error names the field and what to do.
[[nodiscard]] absl::Status ValidateConfig(const DaemonConfig& config);

// The entry for `name`, or nullptr.
[[nodiscard]] const ClusterConfig* FindCluster(const DaemonConfig& config, std::string_view name);

// Splits "host:port"; port must be 0..65535.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
[[nodiscard]] absl::StatusOr<HostPort> ParseHostPort(std::string_view address);

}  // namespace xdc
