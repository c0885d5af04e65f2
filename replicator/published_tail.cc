#include "replicator/published_tail.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_format.h"
#include "protocol/message_codec.h"
#include "replicator/kafka_client.h"

namespace xdc {
namespace {

int64_t HighestVersion(const ReplicationTask& task) {
  int64_t highest = 0;
  for (const VersionHistoryItem& item : task.version_history_items()) {
    highest = std::max(highest, item.version());
  }
  for (const HistoryEvent& event : task.events()) highest = std::max(highest, event.version());
  if (task.has_handover_marker()) {
    highest = std::max({highest, task.handover_marker().source_version(),
                        task.handover_marker().proposed_version()});
  }
  return highest;
}

}  // namespace

absl::StatusOr<std::vector<PublishedTail>> ReadPublishedTails(const DaemonConfig& config,
                                                              const Tunables& tunables,
                                                              const std::string& bootstrap) {
  absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer = KafkaConsumer::Create(
      bootstrap, absl::StrFormat("xdc.%s.startup-check", config.cluster_name()),
      tunables.fetch_wait_max_ms, KafkaPropertiesOf(config.kafka()));
  if (!consumer.ok()) return consumer.status();
  const std::string topic = HistoryTopic(config.cluster_name(), config.kafka().topic_prefix());
  std::vector<PublishedTail> tails;
  for (int32_t shard = 0; shard < config.shard_count(); ++shard) {
    absl::StatusOr<std::pair<int64_t, int64_t>> offsets =
        (*consumer)->QueryWatermarks(topic, shard, tunables.startup_check_kafka_timeout_ms);
    if (!offsets.ok()) return offsets.status();
    const auto [low, high] = *offsets;
    if (high <= low) continue;
    if (absl::Status s = (*consumer)->Assign({{topic, shard, high - 1}}); !s.ok()) return s;
    std::vector<KafkaMessage> last;
    for (int attempt = 0; attempt < tunables.startup_check_read_attempts && last.empty();
         ++attempt) {
      last = (*consumer)->Poll(tunables.startup_check_kafka_timeout_ms, 1);
    }
    if (last.empty()) {
      return absl::UnavailableError(
          absl::StrFormat("the last message of %s partition %d (offset %d) did not arrive", topic,
                          shard, high - 1));
    }
    HistoryMessage message;
    if (!DecodeFrame(last.front().payload, message).ok()) continue;
    tails.push_back(PublishedTail{.shard = shard,
                                  .task_id = message.task().task_id(),
                                  .incarnation = message.task().source_incarnation(),
                                  .highest_version = HighestVersion(message.task())});
  }
  return tails;
}

}  // namespace xdc
