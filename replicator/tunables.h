// Every tunable of the daemon in one table, with its default and unit.
// docs/configuration.md lists the same table for operators.
#pragma once

#include <cstddef>

namespace xdc {

// Whether xdcd serves the fault-point API (GET/POST /v1/fault-points, docs/api.md).
enum class FaultPointApi {
  kDisabled,  // the routes answer 404
  kEnabled,   // for tests and the chaos suite only
};

struct Tunables {
  // --- store ---
  size_t max_commit_group = 256;  // appends per synced WAL write, at most

  // --- publishing (outbox -> Kafka) ---
  size_t outbox_read_batch = 256;                 // tasks read from the outbox per read
  size_t publish_max_in_flight_per_shard = 4096;  // tasks produced but not yet delivered
  int publisher_idle_wait_ms = 100;               // ms; a commit wakes the publisher sooner
  int readyz_kafka_timeout_ms = 1000;             // GET /readyz waits this long for Kafka's answer
  double readyz_max_lag_seconds = 30;    // s; a peer shard further behind makes /readyz fail
  int shutdown_flush_timeout_ms = 5000;  // ms a stopping publisher waits for Kafka's acks

  // --- applying (Kafka -> store) ---
  size_t apply_batch_max_messages = 512;  // messages committed per WriteBatch, at most
  int apply_poll_timeout_ms = 100;        // ms to wait for the first message of a batch
  int fetch_wait_max_ms = 10;             // ms the broker may hold a fetch (librdkafka)
  // ms a peer partition must keep ending below our applied offset before the applier halts
  // (a new partition leader may briefly report a lower end).
  int truncation_confirm_ms = 10000;
  // A parked task awaiting a resend is retried after every poll that applied events, and asks
  // its source again after this many ms, doubling per attempt (up to 512 times this)...
  int resend_retry_interval_ms = 1000;
  // ...this many times in all (about 17 minutes with the defaults), after which it stays in the
  // DLQ for an operator (xdcctl dlq retry|purge).
  int resend_max_attempts = 10;

  // --- Kafka set-up ---
  int topic_create_timeout_ms = 15000;  // ms
  // ms a starting producer waits to learn its topics' partitions (KafkaProducer::LearnTopics);
  // past it, the daemon starts anyway and its first messages wait for librdkafka's topic scan.
  int topic_metadata_timeout_ms = 5000;
  int embedded_kafka_brokers = 1;  // brokers of the embedded mock cluster
  // ms between checks, by an applier, that its peer's topics exist on the peer's Kafka (the peer
  // creates them when it starts); also the longest each check waits for the Kafka to answer.
  int peer_topic_wait_poll_ms = 500;
  // ms between librdkafka statistics of each client (the xdc_kafka_* metrics); 0: none.
  int kafka_statistics_interval_ms = 5000;

  // --- control plane (protocol/handover.h) ---
  // A graceful handover not decided after this long is cancelled by its source (which still
  // waits for the target's decision); a request's timeout_ms overrides it.
  int handover_default_timeout_ms = 30000;
  int handover_max_timeout_ms = 3600000;  // the longest timeout a request may ask for
  int handover_cancel_resend_ms = 2000;   // a source repeats its cancel request this often
  int handover_retry_after_ms = 200;      // the retry hint a write refused during a handover gets
  int control_tick_ms = 50;  // how often the coordinator re-checks activations and deadlines
  size_t handover_dlq_scan_limit = 10000;  // DLQ entries the activation check reads, at most

  // --- startup check (protocol/startup_check.h) ---
  int startup_probe_interval_ms = 1000;       // a waiting check sends its probe again this often
  int startup_check_kafka_timeout_ms = 5000;  // ms per Kafka request reading our topic's tail
  int startup_check_read_attempts = 3;        // polls for a partition's last message, at most

  // --- migration backfill (replicator/backfill_publisher.h) ---
  // Workflow runs per second a backfill publishes when `migration start` sets no --rate.
  int backfill_default_workflows_per_second = 500;
  int backfill_max_workflows_per_second = 100000;  // the highest --rate accepted
  size_t backfill_batch_workflows = 200;  // runs published (and flushed) per cursor step, at most
  int backfill_flush_timeout_ms = 30000;  // ms a step waits for Kafka's acks before retrying it
  int backfill_retry_ms = 1000;           // ms before a failed step is tried again

  // --- API ---
  size_t max_events_per_append = 1000;      // events
  size_t max_appends_per_batch = 1000;      // appends in one POST /v1/append-batch
  size_t max_attributes_bytes = 512 << 10;  // bytes per event
  // Bytes of one replication task (one append). Kafka refuses messages over its
  // message.max.bytes (1,000,000 by default, broker and client), and an accepted append whose
  // task Kafka refuses would block its shard's stream, so appends are bounded below that.
  size_t max_task_bytes = 900 << 10;
  size_t max_request_body_bytes = 16 << 20;  // bytes
  size_t max_http_connections = 256;         // concurrent connections
  int http_idle_timeout_ms = 60000;          // ms a connection may wait for its next request
  // ms to receive a whole request, header and body, counted from its first byte; past it the
  // connection is answered 408 and closed, so slow or stalled clients cannot keep a connection.
  int http_request_read_timeout_ms = 10000;
  size_t dlq_list_default_limit = 100;  // entries
  size_t dlq_list_max_limit = 10000;    // entries
  // ms POST /v1/missing-tasks/acknowledge waits for the applier to store the acknowledgement.
  int acknowledge_missing_timeout_ms = 10000;

  // --- tests and chaos runs only ---
  // xdcd enables it when started with XDC_ENABLE_FAULT_POINTS=1; in-process tests set it here.
  FaultPointApi fault_point_api = FaultPointApi::kDisabled;
};

}  // namespace xdc
