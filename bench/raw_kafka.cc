#include "bench/raw_kafka.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "replicator/kafka_client.h"

namespace xdc::bench {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

// Messages the consumer asks for per poll.
constexpr size_t kConsumeBatch = 10000;
constexpr int kPollMs = 100;

}  // namespace

absl::StatusOr<RawKafkaResult> RunRawKafka(const RawKafkaOptions& options) {
  if (options.messages < 1 || options.partitions < 1 || options.message_bytes < 1) {
    return absl::InvalidArgumentError("raw Kafka run needs messages, partitions and bytes > 0");
  }
  std::atomic<int64_t> delivered{0};
  std::mutex error_mu;
  absl::Status delivery_error;
  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
      options.bootstrap, "xdc-bench-raw", [&](uint64_t, const absl::Status& status) {
        if (!status.ok()) {
          std::lock_guard lock(error_mu);
          if (delivery_error.ok()) delivery_error = status;
        }
        delivered.fetch_add(1);
      });
  if (!producer.ok()) return producer.status();
  absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer =
      KafkaConsumer::Create(options.bootstrap, "xdc-bench-raw", kRawKafkaFetchWaitMs);
  if (!consumer.ok()) return consumer.status();
  std::vector<KafkaConsumer::Assignment> assignments;
  for (int32_t p = 0; p < options.partitions; ++p) {
    assignments.push_back({.topic = options.topic, .partition = p, .offset = 0});
  }
  if (absl::Status s = (*consumer)->Assign(assignments); !s.ok()) return s;

  const Clock::time_point deadline = Clock::now() + absl::ToChronoSeconds(kRawKafkaTimeout);
  const std::string payload(static_cast<size_t>(options.message_bytes), 'x');
  // Warm-up, not timed: one message per partition, produced and consumed, so connections,
  // metadata and the first fetch are in place as they are in a running xdcd.
  int64_t warm_consumed = 0;
  for (int32_t p = 0; p < options.partitions; ++p) {
    if (absl::Status s = (*producer)->Produce(options.topic, p, payload, 0); !s.ok()) return s;
  }
  while ((delivered.load() < options.partitions || warm_consumed < options.partitions) &&
         Clock::now() < deadline) {
    (*producer)->Poll(0);
    warm_consumed += static_cast<int64_t>((*consumer)->Poll(kPollMs, kConsumeBatch).size());
  }
  if (warm_consumed < options.partitions) {
    return absl::DeadlineExceededError("raw Kafka warm-up: the messages did not come back");
  }
  delivered = 0;

  const Clock::time_point start = Clock::now();
  std::atomic<int64_t> consumed{0};
  Clock::time_point consumed_all;
  std::thread reader([&] {
    while (consumed.load() < options.messages && Clock::now() < deadline) {
      consumed.fetch_add(static_cast<int64_t>((*consumer)->Poll(kPollMs, kConsumeBatch).size()));
    }
    consumed_all = Clock::now();
  });

  absl::Status produce_error;
  for (int64_t i = 0; i < options.messages && Clock::now() < deadline; ++i) {
    for (;;) {
      absl::Status s =
          (*producer)->Produce(options.topic, static_cast<int32_t>(i % options.partitions), payload,
                               static_cast<uint64_t>(i));
      if (s.ok()) break;
      if (!absl::IsResourceExhausted(s) || Clock::now() >= deadline) {
        produce_error = s;
        break;
      }
      (*producer)->Poll(1);  // local queue full: serve delivery reports, then retry
    }
    if (!produce_error.ok()) break;
    (*producer)->Poll(0);
  }
  while (produce_error.ok() && delivered.load() < options.messages && Clock::now() < deadline) {
    (*producer)->Poll(kPollMs);
  }
  const Clock::time_point produced = Clock::now();
  reader.join();
  if (!produce_error.ok()) return produce_error;
  {
    std::lock_guard lock(error_mu);
    if (!delivery_error.ok()) return delivery_error;
  }
  if (consumed.load() < options.messages) {
    return absl::DeadlineExceededError(absl::StrCat("raw Kafka run: consumed ", consumed.load(),
                                                    " of ", options.messages, " messages within ",
                                                    absl::FormatDuration(kRawKafkaTimeout)));
  }
  RawKafkaResult result;
  result.messages = options.messages;
  result.message_bytes = options.message_bytes;
  result.produce_seconds = SecondsSince(start, produced);
  result.end_to_end_seconds = SecondsSince(start, consumed_all);
  result.messages_per_second = static_cast<double>(options.messages) / result.end_to_end_seconds;
  return result;
}

}  // namespace xdc::bench
