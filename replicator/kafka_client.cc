#include "replicator/kafka_client.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdio>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "chaos/fault_points.h"
#include "protocol/config.h"
#include "replicator/logger.h"

namespace xdc {
namespace {

// Reconnect quickly when a broker comes back (tests restart processes).
constexpr const char* kReconnectBackoffMaxMs = "500";
// How long a produced message may wait for delivery before it is reported failed and resent.
constexpr const char* kMessageTimeoutMs = "30000";
constexpr size_t kErrorStringBytes = 512;

// Properties whose values are secrets: never shown in an error or a log line.
bool IsSecretProperty(std::string_view key) {
  return key.find("password") != std::string_view::npos ||
         key.find("secret") != std::string_view::npos || key == "ssl.key.pem" ||
         key == "sasl.oauthbearer.config";
}

// librdkafka's log callback (any librdkafka thread): its syslog levels onto ours, one rate limit
// per facility (e.g. "kafka.FAIL" for broker connection failures).
void LogKafkaLine(const rd_kafka_t* rk, int syslog_level, const char* facility, const char* line) {
  constexpr int kSyslogError = 3;
  constexpr int kSyslogWarning = 4;
  constexpr int kSyslogInfo = 6;
  const log::Level level = syslog_level <= kSyslogError     ? log::Level::kError
                           : syslog_level == kSyslogWarning ? log::Level::kWarning
                           : syslog_level <= kSyslogInfo    ? log::Level::kInfo
                                                            : log::Level::kDebug;
  log::Write(level, absl::StrCat("kafka.", facility),
             absl::StrCat("kafka ", rk != nullptr ? rd_kafka_name(rk) : "client", ": ", facility,
                          ": ", line));
}

// librdkafka's statistics callback: `opaque` is the client's KafkaStatisticsSink. Returning 0
// lets librdkafka free the JSON.
int ForwardStatistics(const KafkaStatisticsSink& sink, const char* json, size_t length) {
  if (sink.on_json) sink.on_json(std::string_view(json, length));
  return 0;
}

class ConfBuilder {
 public:
  ConfBuilder() : conf_(rd_kafka_conf_new()) { rd_kafka_conf_set_log_cb(conf_, LogKafkaLine); }
  // Statistics every sink.interval_ms (before SetProperties, which may override the interval).
  ConfBuilder& SetStatistics(const KafkaStatisticsSink& sink,
                             int (*callback)(rd_kafka_t*, char*, size_t, void*)) {
    if (sink.interval_ms <= 0 || !sink.on_json) return *this;
    rd_kafka_conf_set_stats_cb(conf_, callback);
    return Set("statistics.interval.ms", std::to_string(sink.interval_ms));
  }
  ~ConfBuilder() {
    if (conf_ != nullptr) rd_kafka_conf_destroy(conf_);
  }
  ConfBuilder& Set(const char* key, const std::string& value) {
    char errstr[kErrorStringBytes];
    if (status_.ok() &&
        rd_kafka_conf_set(conf_, key, value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      status_ = absl::InvalidArgumentError(absl::StrFormat("kafka setting %s: %s", key, errstr));
    }
    return *this;
  }
  // The deployment's properties, after xdc's own settings (so they win over its defaults).
  ConfBuilder& SetProperties(const KafkaProperties& properties) {
    for (const auto& [key, value] : properties) {
      if (!status_.ok()) break;
      has_properties_ = true;
      if (absl::Status s = CheckKafkaProperty(key); !s.ok()) {
        status_ = s;
        break;
      }
      char errstr[kErrorStringBytes];
      if (rd_kafka_conf_set(conf_, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
          RD_KAFKA_CONF_OK) {
        std::string error = errstr;
        if (IsSecretProperty(key) && !value.empty()) {
          error = absl::StrReplaceAll(error, {{value, "(redacted)"}});
        }
        status_ =
            absl::InvalidArgumentError(absl::StrFormat("kafka.properties '%s': %s", key, error));
      }
    }
    return *this;
  }
  rd_kafka_conf_t* get() { return conf_; }
  // Creates the handle; the conf is consumed on success.
  absl::StatusOr<rd_kafka_t*> NewHandle(rd_kafka_type_t type) {
    if (!status_.ok()) return status_;
    char errstr[kErrorStringBytes];
    rd_kafka_t* rk = rd_kafka_new(type, conf_, errstr, sizeof errstr);
    if (rk == nullptr && has_properties_) {
      // E.g. "ssl.ca.location failed: ...": librdkafka checks files and combinations here.
      return absl::InvalidArgumentError(
          absl::StrCat("creating a kafka client: ", errstr, " (check kafka.properties)"));
    }
    if (rk == nullptr)
      return absl::InternalError(absl::StrCat("creating a kafka client: ", errstr));
    conf_ = nullptr;
    return rk;
  }

 private:
  rd_kafka_conf_t* conf_;
  absl::Status status_;
  bool has_properties_ = false;  // errors from rd_kafka_new may then come from them
};

absl::Status KafkaError(rd_kafka_resp_err_t err, std::string_view what) {
  return absl::UnavailableError(absl::StrCat(std::string(what), ": ", rd_kafka_err2str(err)));
}

}  // namespace

KafkaProperties KafkaPropertiesOf(const KafkaConfig& config) {
  return KafkaProperties(config.properties().begin(), config.properties().end());
}

namespace {
std::string TopicName(std::string_view prefix, std::string_view cluster, std::string_view kind) {
  return absl::StrCat(std::string(prefix.empty() ? kDefaultTopicPrefix : prefix), ".",
                      std::string(cluster), ".", std::string(kind));
}
}  // namespace

std::string HistoryTopic(std::string_view cluster, std::string_view prefix) {
  return TopicName(prefix, cluster, "history");
}
std::string ControlTopic(std::string_view cluster, std::string_view prefix) {
  return TopicName(prefix, cluster, "control");
}

// --- EmbeddedKafka ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<EmbeddedKafka>> EmbeddedKafka::Start(int broker_count) {
  std::unique_ptr<EmbeddedKafka> kafka(new EmbeddedKafka());
  ConfBuilder conf;
  conf.Set("log_level", "3");
  absl::StatusOr<rd_kafka_t*> rk = conf.NewHandle(RD_KAFKA_PRODUCER);
  if (!rk.ok()) return rk.status();
  kafka->rk_ = *rk;
  kafka->cluster_ = rd_kafka_mock_cluster_new(kafka->rk_, broker_count);
  if (kafka->cluster_ == nullptr) {
    return absl::InternalError("librdkafka could not start its mock cluster");
  }
  kafka->broker_count_ = broker_count;
  kafka->bootstrap_ = rd_kafka_mock_cluster_bootstraps(kafka->cluster_);
  return kafka;
}

absl::Status EmbeddedKafka::CheckBroker(int32_t broker_id) const {
  if (broker_id < 1 || broker_id > broker_count_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "no broker %d: the mock cluster's brokers are 1 to %d", broker_id, broker_count_));
  }
  return absl::OkStatus();
}

absl::Status EmbeddedKafka::SetBrokerDown(int32_t broker_id) {
  if (absl::Status s = CheckBroker(broker_id); !s.ok()) return s;
  rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_down(cluster_, broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(err, absl::StrCat("setting mock broker ", broker_id, " down"));
  }
  return absl::OkStatus();
}

absl::Status EmbeddedKafka::SetBrokerUp(int32_t broker_id) {
  if (absl::Status s = CheckBroker(broker_id); !s.ok()) return s;
  rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_up(cluster_, broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(err, absl::StrCat("setting mock broker ", broker_id, " up"));
  }
  return absl::OkStatus();
}

absl::Status EmbeddedKafka::SetBrokerRtt(int32_t broker_id, int rtt_ms) {
  if (absl::Status s = CheckBroker(broker_id); !s.ok()) return s;
  if (rtt_ms < 0 || rtt_ms > kMaxBrokerRttMs) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "a round-trip time must be 0 to %d ms (0 clears it), got %d", kMaxBrokerRttMs, rtt_ms));
  }
  rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rtt(cluster_, broker_id, rtt_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(err, absl::StrCat("setting mock broker ", broker_id, "'s round-trip time"));
  }
  return absl::OkStatus();
}

absl::Status EmbeddedKafka::PushRequestErrors(MockApi api, int count) {
  // Kafka protocol API keys (librdkafka's RD_KAFKAP_* are not in its public headers).
  constexpr int16_t kApiKeyProduce = 0;
  constexpr int16_t kApiKeyFetch = 1;
  constexpr int16_t kApiKeyMetadata = 3;
  if (count < 1 || count > kMaxPushedRequestErrors) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the number of request errors must be 1 to %d, got %d", kMaxPushedRequestErrors, count));
  }
  int16_t api_key = kApiKeyProduce;
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
  switch (api) {
    case MockApi::kProduce:
      break;
    case MockApi::kFetch:
      api_key = kApiKeyFetch;
      break;
    case MockApi::kMetadata:
      api_key = kApiKeyMetadata;
      error = RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT;
      break;
  }
  const std::vector<rd_kafka_resp_err_t> errors(count, error);
  rd_kafka_mock_push_request_errors_array(cluster_, api_key, errors.size(), errors.data());
  return absl::OkStatus();
}

absl::Status EmbeddedKafka::CreateTopic(const std::string& name, int32_t partitions) {
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    return KafkaError(err, "creating mock topic " + name);
  }
  return absl::OkStatus();
}

EmbeddedKafka::~EmbeddedKafka() {
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
  if (rk_ != nullptr) rd_kafka_destroy(rk_);
}

// --- EnsureTopics ----------------------------------------------------------------------------

namespace {

struct ClusterTopics {
  std::map<std::string, int> partitions;  // of the topics that exist, by name
  int32_t brokers = 0;
};

absl::StatusOr<ClusterTopics> ReadClusterTopics(rd_kafka_t* rk, const std::string& bootstrap,
                                                int timeout_ms) {
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &metadata, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return KafkaError(
        err, absl::StrCat("reading topic metadata from ", bootstrap, " (is Kafka reachable?)"));
  }
  ClusterTopics result;
  result.brokers = metadata->broker_cnt;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    if (metadata->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      result.partitions[metadata->topics[i].topic] = metadata->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(metadata);
  return result;
}

// The topics of `wanted` that `existing` lacks, or has with fewer partitions than wanted.
std::vector<std::string> Lacking(const ClusterTopics& existing,
                                 const std::vector<TopicSpec>& wanted) {
  std::vector<std::string> lacking;
  for (const TopicSpec& spec : wanted) {
    auto it = existing.partitions.find(spec.name);
    if (it == existing.partitions.end() || it->second < spec.partitions) {
      lacking.push_back(spec.name);
    }
  }
  return lacking;
}

absl::Status CreateTopics(rd_kafka_t* rk, const std::string& bootstrap,
                          const std::vector<TopicSpec>& topics, int timeout_ms,
                          const TopicReplication& replication) {
  std::vector<rd_kafka_NewTopic_t*> new_topics;
  char errstr[kErrorStringBytes];
  const std::string min_insync = std::to_string(replication.min_insync_replicas);
  for (const TopicSpec& spec : topics) {
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(
        spec.name.c_str(), spec.partitions, replication.replication_factor, errstr, sizeof errstr);
    if (topic == nullptr) {
      for (rd_kafka_NewTopic_t* t : new_topics) rd_kafka_NewTopic_destroy(t);
      return absl::InvalidArgumentError(
          absl::StrFormat("describing topic %s to create: %s", spec.name, errstr));
    }
    rd_kafka_NewTopic_set_config(topic, "min.insync.replicas", min_insync.c_str());
    new_topics.push_back(topic);
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, errstr, sizeof errstr);
  rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, errstr, sizeof errstr);
  rd_kafka_CreateTopics(rk, new_topics.data(), new_topics.size(), options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, timeout_ms + 1000);
  absl::Status result;
  if (event == nullptr) {
    result = absl::DeadlineExceededError(
        absl::StrFormat("creating topics on %s timed out after %d ms", bootstrap, timeout_ms));
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result = absl::UnavailableError(absl::StrFormat("creating topics on %s: %s", bootstrap,
                                                    rd_kafka_event_error_string(event)));
  } else {
    size_t count = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
    for (size_t i = 0; i < count && result.ok(); ++i) {
      rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        result = absl::UnavailableError(
            absl::StrFormat("creating topic %s: %s", rd_kafka_topic_result_name(results[i]),
                            rd_kafka_topic_result_error_string(results[i])));
      }
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_queue_destroy(queue);
  for (rd_kafka_NewTopic_t* t : new_topics) rd_kafka_NewTopic_destroy(t);
  return result;
}

}  // namespace

absl::Status EnsureTopics(const std::string& bootstrap, const std::vector<TopicSpec>& topics,
                          int timeout_ms, const KafkaProperties& properties,
                          const KafkaConfig& topic_settings) {
  ConfBuilder conf;
  conf.Set("bootstrap.servers", bootstrap)
      .Set("reconnect.backoff.max.ms", kReconnectBackoffMaxMs)
      .SetProperties(properties);
  absl::StatusOr<rd_kafka_t*> created = conf.NewHandle(RD_KAFKA_PRODUCER);
  if (!created.ok()) return created.status();
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> rk(*created, rd_kafka_destroy);

  absl::StatusOr<ClusterTopics> existing = ReadClusterTopics(rk.get(), bootstrap, timeout_ms);
  if (!existing.ok()) return existing.status();
  // Checked at every start, not only when creating: a setting the Kafka cannot honour is a
  // config error whether or not the topics already exist.
  absl::StatusOr<TopicReplication> replication =
      TopicReplicationFor(topic_settings, existing->brokers, bootstrap);
  if (!replication.ok()) return replication.status();
  std::vector<TopicSpec> missing;
  for (const TopicSpec& spec : topics) {
    auto it = existing->partitions.find(spec.name);
    if (it == existing->partitions.end()) {
      missing.push_back(spec);
    } else if (it->second < spec.partitions) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "topic %s has %d partitions but shard_count needs %d: shard_count must match the "
          "deployment's topics",
          spec.name, it->second, spec.partitions));
    }
  }
  if (missing.empty()) return absl::OkStatus();
  if (absl::Status s = CreateTopics(rk.get(), bootstrap, missing, timeout_ms, *replication);
      !s.ok()) {
    return absl::UnavailableError(absl::StrCat(
        s.message(), ". Create the topics (", missing.front().name,
        ", ...) beforehand, or start xdc-kafka-mock with --cluster flags for every cluster"));
  }
  return absl::OkStatus();
}

// --- KafkaProducer ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(
    const std::string& bootstrap, const std::string& client_id, DeliveryFn on_delivery,
    const KafkaProperties& properties, KafkaStatisticsSink statistics) {
  std::unique_ptr<KafkaProducer> producer(new KafkaProducer());
  producer->on_delivery_ = std::move(on_delivery);
  producer->statistics_ = std::move(statistics);
  ConfBuilder conf;
  conf.SetStatistics(
      producer->statistics_, [](rd_kafka_t*, char* json, size_t length, void* opaque) {
        return ForwardStatistics(static_cast<KafkaProducer*>(opaque)->statistics_, json, length);
      });
  conf.Set("bootstrap.servers", bootstrap)
      .Set("client.id", client_id)
      .Set("enable.idempotence", "true")
      .Set("acks", "all")
      .Set("linger.ms", "1")
      .Set("message.timeout.ms", kMessageTimeoutMs)
      .Set("reconnect.backoff.max.ms", kReconnectBackoffMaxMs)
      .SetProperties(properties);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), [](rd_kafka_t* rk, const rd_kafka_message_t* m,
                                             void* opaque) { OnDelivery(rk, m, opaque); });
  rd_kafka_conf_set_opaque(conf.get(), producer.get());
  absl::StatusOr<rd_kafka_t*> rk = conf.NewHandle(RD_KAFKA_PRODUCER);
  if (!rk.ok()) return rk.status();
  producer->rk_ = *rk;
  return producer;
}

KafkaProducer::~KafkaProducer() {
  for (rd_kafka_topic_t* topic : topics_) rd_kafka_topic_destroy(topic);
  if (rk_ != nullptr) rd_kafka_destroy(rk_);
}

void KafkaProducer::OnDelivery(rd_kafka_t*, const void* message, void* opaque) {
  const auto* m = static_cast<const rd_kafka_message_t*>(message);
  auto* self = static_cast<KafkaProducer*>(opaque);
  const uint64_t token = reinterpret_cast<uint64_t>(m->_private);
  absl::Status status = m->err == RD_KAFKA_RESP_ERR_NO_ERROR
                            ? absl::OkStatus()
                            : KafkaError(m->err, "delivering a message");
  self->on_delivery_(token, status);
}

absl::Status KafkaProducer::Produce(const std::string& topic, int32_t partition,
                                    std::string_view payload, uint64_t token) {
  rd_kafka_resp_err_t err =
      rd_kafka_producev(rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_VALUE(const_cast<char*>(payload.data()), payload.size()),
                        RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(token)), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    return absl::ResourceExhaustedError("kafka producer queue is full");
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "producing to " + topic);
  return absl::OkStatus();
}

void KafkaProducer::Poll(int timeout_ms) { rd_kafka_poll(rk_, timeout_ms); }

absl::Status KafkaProducer::CheckReachable(int timeout_ms) {
  const struct rd_kafka_metadata* metadata = nullptr;
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk_, /*all_topics=*/0, /*only_rkt=*/nullptr, &metadata, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrFormat("no metadata within %d ms: %s", timeout_ms, rd_kafka_err2str(err)));
  }
  const int brokers = metadata->broker_cnt;
  rd_kafka_metadata_destroy(metadata);
  if (brokers == 0) return absl::UnavailableError("the cluster reported no brokers");
  return absl::OkStatus();
}

absl::Status KafkaProducer::LearnTopics(const std::vector<std::string>& topics, int timeout_ms) {
  for (const std::string& name : topics) {
    rd_kafka_topic_t* topic = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
    if (topic == nullptr) {
      return KafkaError(rd_kafka_last_error(), "creating the handle of topic " + name);
    }
    topics_.push_back(topic);
  }
  // all_topics=0 without a topic asks for every topic this handle knows: the ones just added.
  const struct rd_kafka_metadata* metadata = nullptr;
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk_, /*all_topics=*/0, /*only_rkt=*/nullptr, &metadata, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrFormat("no metadata of %s within %d ms: %s",
                                                  absl::StrJoin(topics, ", "), timeout_ms,
                                                  rd_kafka_err2str(err)));
  }
  absl::Status result;
  for (int i = 0; i < metadata->topic_cnt && result.ok(); ++i) {
    const rd_kafka_metadata_topic& topic = metadata->topics[i];
    if (topic.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result = absl::UnavailableError(
          absl::StrFormat("metadata of topic %s: %s", topic.topic, rd_kafka_err2str(topic.err)));
    }
  }
  rd_kafka_metadata_destroy(metadata);
  return result;
}

absl::Status KafkaProducer::FatalError() const {
  char reason[512];
  const rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk_, reason, sizeof(reason));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  return absl::InternalError(
      absl::StrFormat("fatal producer error %s: %s", rd_kafka_err2name(err), reason));
}

absl::Status KafkaProducer::RaiseFatalErrorForTesting(const std::string& reason) {
  const rd_kafka_resp_err_t err = rd_kafka_test_fatal_error(
      rk_, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason.c_str());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "raising a fatal error");
  return absl::OkStatus();
}

absl::Status KafkaProducer::Flush(int timeout_ms) {
  rd_kafka_resp_err_t err = rd_kafka_flush(rk_, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "flushing the producer");
  return absl::OkStatus();
}

// --- KafkaConsumer ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<KafkaConsumer>> KafkaConsumer::Create(
    const std::string& bootstrap, const std::string& group_id, int fetch_wait_max_ms,
    const KafkaProperties& properties, KafkaStatisticsSink statistics) {
  std::unique_ptr<KafkaConsumer> consumer(new KafkaConsumer());
  consumer->statistics_ = std::move(statistics);
  consumer->bootstrap_ = bootstrap;
  ConfBuilder conf;
  conf.SetStatistics(
      consumer->statistics_, [](rd_kafka_t*, char* json, size_t length, void* opaque) {
        return ForwardStatistics(static_cast<KafkaConsumer*>(opaque)->statistics_, json, length);
      });
  conf.Set("bootstrap.servers", bootstrap)
      .Set("group.id", group_id)
      .Set("enable.auto.commit", "false")
      .Set("enable.auto.offset.store", "false")
      .Set("enable.partition.eof", "false")
      // Offsets come from our own store; "earliest" only applies if the stored offset is gone,
      // and re-reading is safe because applying is idempotent.
      .Set("auto.offset.reset", "earliest")
      .Set("fetch.wait.max.ms", std::to_string(fetch_wait_max_ms))
      .Set("topic.metadata.refresh.interval.ms", "1000")
      .Set("reconnect.backoff.max.ms", kReconnectBackoffMaxMs)
      .SetProperties(properties);
  rd_kafka_conf_set_opaque(conf.get(), consumer.get());
  absl::StatusOr<rd_kafka_t*> rk = conf.NewHandle(RD_KAFKA_CONSUMER);
  if (!rk.ok()) return rk.status();
  consumer->rk_ = *rk;
  rd_kafka_poll_set_consumer(consumer->rk_);
  return consumer;
}

KafkaConsumer::~KafkaConsumer() {
  if (rk_ != nullptr) {
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }
}

absl::Status KafkaConsumer::Assign(const std::vector<Assignment>& assignments) {
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(assignments.size()));
  for (const Assignment& a : assignments) {
    rd_kafka_topic_partition_list_add(list, a.topic.c_str(), a.partition)->offset = a.offset;
  }
  rd_kafka_resp_err_t err = rd_kafka_assign(rk_, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(err, "assigning partitions");
  return absl::OkStatus();
}

namespace {

// kafka.reorder_delivery: swaps each partition's 1st and 2nd message, 3rd and 4th, ...
void SwapAdjacentPerPartition(std::vector<KafkaMessage>& messages) {
  std::map<std::pair<std::string, int32_t>, size_t> unpaired;  // partition -> index awaiting a pair
  for (size_t i = 0; i < messages.size(); ++i) {
    auto [it, first] = unpaired.try_emplace({messages[i].topic, messages[i].partition}, i);
    if (first) continue;
    std::swap(messages[it->second], messages[i]);
    unpaired.erase(it);
  }
}

// kafka.duplicate_delivery: each message, then its copy.
std::vector<KafkaMessage> Duplicated(std::vector<KafkaMessage> messages) {
  std::vector<KafkaMessage> doubled;
  doubled.reserve(2 * messages.size());
  for (KafkaMessage& message : messages) {
    doubled.push_back(message);
    doubled.push_back(std::move(message));
  }
  return doubled;
}

}  // namespace

std::vector<KafkaMessage> KafkaConsumer::Poll(int timeout_ms, size_t max) {
  const bool duplicate = fault::Armed(fault::kKafkaDuplicateDelivery);
  const bool reorder = fault::Armed(fault::kKafkaReorderDelivery);
  // Duplicating doubles the batch: take half, so the caller still gets at most `max`.
  if (duplicate && max > 1) max /= 2;
  std::vector<KafkaMessage> messages;
  int wait_ms = timeout_ms;
  while (messages.size() < max) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, wait_ms);
    if (m == nullptr) break;
    wait_ms = 0;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Transient (broker down, topic not yet created): librdkafka keeps retrying.
      log::Write(log::Level::kWarning, "kafka.consumer_error",
                 absl::StrFormat("kafka consumer: %s", rd_kafka_message_errstr(m)));
      rd_kafka_message_destroy(m);
      break;
    }
    KafkaMessage message;
    message.topic = rd_kafka_topic_name(m->rkt);
    message.partition = m->partition;
    message.offset = m->offset;
    message.payload.assign(static_cast<const char*>(m->payload), m->len);
    messages.push_back(std::move(message));
    rd_kafka_message_destroy(m);
  }
  if (reorder) SwapAdjacentPerPartition(messages);
  if (duplicate) return Duplicated(std::move(messages));
  return messages;
}

absl::StatusOr<std::vector<std::string>> KafkaConsumer::LackingTopics(
    const std::vector<TopicSpec>& topics, int timeout_ms) {
  absl::StatusOr<ClusterTopics> existing = ReadClusterTopics(rk_, bootstrap_, timeout_ms);
  if (!existing.ok()) return existing.status();
  return Lacking(*existing, topics);
}

std::optional<int64_t> KafkaConsumer::LowWatermark(const std::string& topic, int32_t partition) {
  int64_t low = 0;
  int64_t high = 0;
  if (rd_kafka_get_watermark_offsets(rk_, topic.c_str(), partition, &low, &high) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      low < 0) {
    return std::nullopt;
  }
  return low;
}

absl::StatusOr<std::pair<int64_t, int64_t>> KafkaConsumer::QueryWatermarks(const std::string& topic,
                                                                           int32_t partition,
                                                                           int timeout_ms) {
  int64_t low = 0;
  int64_t high = 0;
  const rd_kafka_resp_err_t err =
      rd_kafka_query_watermark_offsets(rk_, topic.c_str(), partition, &low, &high, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrFormat("querying the offsets of %s partition %d: %s",
                                                  topic, partition, rd_kafka_err2str(err)));
  }
  return std::pair<int64_t, int64_t>(low, high);
}

std::optional<int64_t> KafkaConsumer::HighWatermark(const std::string& topic, int32_t partition) {
  int64_t low = 0;
  int64_t high = 0;
  if (rd_kafka_get_watermark_offsets(rk_, topic.c_str(), partition, &low, &high) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      high < 0) {
    return std::nullopt;
  }
  return high;
}

}  // namespace xdc
