#include "bench/open_loop.h"

#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "bench/mono_clock.h"
#include "protocol/shard_hash.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"

namespace xdc::bench {
namespace {

// A worker that finds every workflow in flight (only when concurrency > pool capacity) waits
// this long before asking again.
constexpr auto kPoolEmptyBackoff = std::chrono::microseconds(200);

// Attributes that do not compress to nothing: a fixed pseudo-random byte string.
std::string PayloadBase64(int bytes) {
  std::string raw(static_cast<size_t>(bytes), '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (char& c : raw) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x & 0xFF);
  }
  return absl::Base64Escape(raw);
}

// The append's JSON, written directly (the generator must not spend the CPU the daemons need).
std::string AppendJson(const OpenLoopOptions& o, const std::string& workflow_id,
                       int64_t next_event_id, const std::string& payload) {
  std::string json =
      absl::StrCat(R"({"namespace":")", o.namespace_name, R"(","workflow_id":")", workflow_id,
                   R"(","expected_next_event_id":")", next_event_id, R"(","events":[)");
  for (int i = 0; i < o.events_per_request; ++i) {
    const int64_t event_id = next_event_id + i;
    const char* type = event_id == 1       ? "WORKFLOW_EXECUTION_STARTED"
                       : event_id % 2 == 0 ? "ACTIVITY_TASK_SCHEDULED"
                                           : "ACTIVITY_TASK_COMPLETED";
    absl::StrAppend(&json, i == 0 ? "" : ",", R"({"event_type":")", type, R"(","attributes":")",
                    payload, R"("})");
  }
  json += "]}";
  return json;
}

}  // namespace

int Route::IndexOf(const std::string& name) const {
  for (size_t i = 0; i < clusters_.size(); ++i) {
    if (clusters_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

OpenLoopResult RunOpenLoop(const OpenLoopOptions& options, Route& route, WorkflowPool& pool) {
  const std::string payload = PayloadBase64(options.payload_bytes);
  const int64_t start = MonoMicros();
  const int64_t end = start + absl::ToInt64Microseconds(options.duration);
  std::atomic<int64_t> next{0};
  std::mutex mu;
  OpenLoopResult result;
  result.start_us = start;

  auto worker = [&] {
    std::map<std::string, std::unique_ptr<HttpClient>> clients;  // by address
    std::vector<RequestRecord> records;
    int64_t ok = 0, refused = 0, redirected = 0, failed = 0, events_ok = 0;
    std::string first_error;
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (options.max_requests > 0 && i >= options.max_requests) break;
      const int64_t due =
          options.rate > 0
              ? start + static_cast<int64_t>(static_cast<double>(i) * 1e6 / options.rate)
              : MonoMicros();
      if (due >= end) break;
      if (const int64_t now = MonoMicros(); due > now) {
        std::this_thread::sleep_for(std::chrono::microseconds(due - now));
      }
      std::optional<WorkflowPool::Lease> lease;
      while (!(lease = pool.Take())) std::this_thread::sleep_for(kPoolEmptyBackoff);
      const std::string workflow_id = pool.WorkflowId(lease->index);
      RequestRecord record;
      record.due_us = due;
      record.shard = ShardFor(options.namespace_id, workflow_id, options.shard_count);
      record.events = options.events_per_request;
      record.cluster = static_cast<int8_t>(route.active());
      const std::string address = route.Address(record.cluster);
      if (address.empty()) {  // the active cluster is down: nothing was sent
        record.sent_us = record.done_us = MonoMicros();
        record.outcome = Outcome::kFailed;
        ++failed;
        if (first_error.empty()) first_error = "active cluster not running";
        pool.Return(lease->index, lease->next_event_id);
        records.push_back(record);
        continue;
      }
      std::unique_ptr<HttpClient>& client = clients[address];
      if (client == nullptr) {
        client = std::make_unique<HttpClient>(
            address, std::chrono::milliseconds(absl::ToInt64Milliseconds(kRequestTimeout)));
      }
      const std::string body = AppendJson(options, workflow_id, lease->next_event_id, payload);
      record.sent_us = MonoMicros();
      absl::StatusOr<HttpResult> http = client->Request("POST", "/v1/append", body);
      record.done_us = MonoMicros();
      if (!http.ok()) {
        record.outcome = Outcome::kFailed;
        ++failed;
        if (first_error.empty()) first_error = http.status().ToString();
        pool.Drop(lease->index);  // it may or may not have been written
        clients.erase(address);
      } else if (http->status == 200) {
        AppendResponse response;
        if (absl::Status s = FromJson(http->body, response); !s.ok()) {
          record.outcome = Outcome::kFailed;
          ++failed;
          if (first_error.empty()) first_error = s.ToString();
          pool.Drop(lease->index);
        } else {
          record.outcome = Outcome::kOk;
          ++ok;
          events_ok += record.events;
          pool.Return(lease->index, response.next_event_id());
        }
      } else {
        ErrorResponse error;
        (void)FromJson(http->body, error);  // an unparsable body is a plain failure below
        const int named = route.IndexOf(error.active_cluster());
        if (http->status == 503 && error.retryable()) {
          record.outcome = Outcome::kRefused;
          ++refused;
        } else if (http->status == 409 && named >= 0 && named != record.cluster) {
          record.outcome = Outcome::kRedirected;
          ++redirected;
          route.set_active(named);
        } else {
          record.outcome = Outcome::kFailed;
          ++failed;
          if (first_error.empty()) {
            first_error = absl::StrCat("HTTP ", http->status, ": ", http->body);
          }
        }
        pool.Return(lease->index, lease->next_event_id);  // refused: nothing was written
      }
      records.push_back(record);
    }
    std::lock_guard lock(mu);
    result.requests.insert(result.requests.end(), records.begin(), records.end());
    result.ok += ok;
    result.refused += refused;
    result.redirected += redirected;
    result.failed += failed;
    result.events_ok += events_ok;
    if (result.first_error.empty()) result.first_error = first_error;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < options.concurrency; ++t) threads.emplace_back(worker);
  for (std::thread& thread : threads) thread.join();
  result.end_us = start;
  for (const RequestRecord& r : result.requests) result.end_us = std::max(result.end_us, r.done_us);
  return result;
}

}  // namespace xdc::bench
