#include "bench/open_loop.h"

#include <algorithm>
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
    // Books one append's outcome: 200 with its answer, or its error as POST /v1/append gives it.
    auto settle = [&](RequestRecord& record, const WorkflowPool::Lease& lease, int http_status,
                      const AppendResponse& appended, const ErrorResponse& error) {
      const int named = route.IndexOf(error.active_cluster());
      if (http_status == 200) {
        record.outcome = Outcome::kOk;
        ++ok;
        events_ok += record.events;
        pool.Return(lease.index, appended.next_event_id());
        return;
      }
      if (http_status == 503 && error.retryable()) {
        record.outcome = Outcome::kRefused;
        ++refused;
      } else if (http_status == 409 && named >= 0 && named != record.cluster) {
        record.outcome = Outcome::kRedirected;
        ++redirected;
        route.set_active(named);
      } else {
        record.outcome = Outcome::kFailed;
        ++failed;
        if (first_error.empty()) {
          first_error =
              absl::StrCat("HTTP ", http_status, ": ", error.code(), " ", error.message());
        }
      }
      pool.Return(lease.index, lease.next_event_id);  // refused: nothing was written
    };
    // Books appends whose outcome is unknown (or that were never sent) as failed.
    auto fail = [&](std::vector<RequestRecord>& batch, std::vector<WorkflowPool::Lease>& leases,
                    const std::string& why, bool written_maybe) {
      for (size_t k = 0; k < batch.size(); ++k) {
        batch[k].outcome = Outcome::kFailed;
        ++failed;
        if (written_maybe) {
          pool.Drop(leases[k].index);  // it may or may not have been written
        } else {
          pool.Return(leases[k].index, leases[k].next_event_id);
        }
      }
      if (first_error.empty()) first_error = why;
    };
    for (;;) {
      // Appends [first, first + per_request) go out together, when the last of them is due.
      const int64_t first = next.fetch_add(options.appends_per_request);
      int64_t count = options.appends_per_request;
      if (options.max_requests > 0) count = std::min(count, options.max_requests - first);
      auto due_of = [&](int64_t i) {
        return options.rate > 0
                   ? start + static_cast<int64_t>(static_cast<double>(i) * 1e6 / options.rate)
                   : MonoMicros();
      };
      while (count > 0 && due_of(first + count - 1) >= end) --count;
      if (count <= 0) break;
      if (const int64_t last_due = due_of(first + count - 1), now = MonoMicros(); last_due > now) {
        std::this_thread::sleep_for(std::chrono::microseconds(last_due - now));
      }
      // As many free workflows as there are appends, or fewer if the pool runs dry (never
      // waiting while holding some: two workers could each hold what the other waits for).
      std::vector<WorkflowPool::Lease> leases;
      while (leases.empty()) {
        while (static_cast<int64_t>(leases.size()) < count) {
          std::optional<WorkflowPool::Lease> lease = pool.Take();
          if (!lease) break;
          leases.push_back(*lease);
        }
        if (leases.empty()) std::this_thread::sleep_for(kPoolEmptyBackoff);
      }
      const int8_t cluster = static_cast<int8_t>(route.active());
      std::vector<RequestRecord> batch(leases.size());
      std::string body;
      for (size_t k = 0; k < leases.size(); ++k) {
        const std::string workflow_id = pool.WorkflowId(leases[k].index);
        batch[k].due_us = options.rate > 0 ? due_of(first + static_cast<int64_t>(k)) : MonoMicros();
        batch[k].shard = ShardFor(options.namespace_id, workflow_id, options.shard_count);
        batch[k].events = options.events_per_request;
        batch[k].cluster = cluster;
        absl::StrAppend(&body, k == 0 ? "" : ",",
                        AppendJson(options, workflow_id, leases[k].next_event_id, payload));
      }
      const bool batched = options.appends_per_request > 1;
      if (batched) body = absl::StrCat(R"({"appends":[)", body, "]}");
      const std::string address = route.Address(cluster);
      auto finish = [&](int64_t sent, int64_t done) {
        for (RequestRecord& record : batch) {
          record.sent_us = sent;
          record.done_us = done;
          records.push_back(record);
        }
      };
      if (address.empty()) {  // the active cluster is down: nothing was sent
        const int64_t now = MonoMicros();
        fail(batch, leases, "active cluster not running", /*written_maybe=*/false);
        finish(now, now);
        continue;
      }
      std::unique_ptr<HttpClient>& client = clients[address];
      if (client == nullptr) {
        client = std::make_unique<HttpClient>(
            address, std::chrono::milliseconds(absl::ToInt64Milliseconds(kRequestTimeout)));
      }
      const int64_t sent = MonoMicros();
      absl::StatusOr<HttpResult> http =
          client->Request("POST", batched ? "/v1/append-batch" : "/v1/append", body);
      const int64_t done = MonoMicros();
      if (!http.ok()) {
        fail(batch, leases, http.status().ToString(), /*written_maybe=*/true);
        clients.erase(address);
      } else if (!batched) {
        AppendResponse appended;
        ErrorResponse error;
        absl::Status parsed =
            http->status == 200 ? FromJson(http->body, appended) : FromJson(http->body, error);
        if (http->status == 200 && !parsed.ok()) {
          fail(batch, leases, parsed.ToString(), /*written_maybe=*/true);
        } else {
          if (!parsed.ok()) error.set_message(http->body);  // a plain failure in settle
          settle(batch[0], leases[0], http->status, appended, error);
        }
      } else {
        AppendBatchResponse answer;
        absl::Status parsed =
            http->status == 200
                ? FromJson(http->body, answer)
                : absl::InternalError(absl::StrCat("HTTP ", http->status, ": ", http->body));
        if (parsed.ok() && answer.results_size() != static_cast<int>(batch.size())) {
          parsed = absl::InternalError("the batch answer does not have one result per append");
        }
        if (!parsed.ok()) {
          fail(batch, leases, parsed.ToString(), /*written_maybe=*/http->status == 200);
        } else {
          for (size_t k = 0; k < batch.size(); ++k) {
            const AppendResult& result = answer.results(static_cast<int>(k));
            settle(batch[k], leases[k], result.http_status(), result.appended(), result.error());
          }
        }
      }
      finish(sent, done);
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
