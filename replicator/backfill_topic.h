// The name of a cluster's backfill topic: "<prefix>.<cluster>.backfill" (prefix "" means
// kDefaultTopicPrefix), shard_count partitions, next to its history and control topics
// (replicator/kafka_client.h). Migrations publish whole histories on it (docs/migration.md).
#pragma once

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "replicator/kafka_client.h"

namespace xdc {

[[nodiscard]] inline std::string BackfillTopic(std::string_view cluster,
                                               std::string_view prefix = "") {
  return absl::StrCat(std::string(prefix.empty() ? kDefaultTopicPrefix : prefix), ".",
                      std::string(cluster), ".backfill");
}

}  // namespace xdc
