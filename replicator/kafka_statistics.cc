#include "replicator/kafka_statistics.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace xdc {

absl::StatusOr<RdKafkaStatistics> ParseKafkaStatistics(std::string_view json) {
  RdKafkaStatistics statistics;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const google::protobuf::util::Status parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &statistics, options);
  if (!parsed.ok()) {
    // The parser's message continues with a quote of the input on further lines: one log line.
    const std::string message(parsed.message());
    return absl::InvalidArgumentError(
        absl::StrCat("librdkafka statistics are not the JSON expected: ",
                     message.substr(0, message.find('\n'))));
  }
  auto& brokers = *statistics.mutable_brokers();
  for (auto it = brokers.begin(); it != brokers.end();) {
    it = it->second.nodeid() < 0 ? brokers.erase(it) : std::next(it);
  }
  return statistics;
}

}  // namespace xdc
