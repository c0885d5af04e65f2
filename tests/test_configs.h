// A daemon config that passes validation, for tests that start from it and change one thing.
#pragma once

namespace xdc::testing_util {

inline constexpr char kValidConfig[] = R"pb(
  cluster_name: "east"
  failover_version_increment: 100
  shard_count: 4
  clusters { name: "east" initial_failover_version: 1 }
  clusters { name: "west" initial_failover_version: 2 }
  data_dir: "/tmp/x"
  http_listen_address: "127.0.0.1:0"
)pb";

}  // namespace xdc::testing_util
