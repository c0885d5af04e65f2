// A load that follows a namespace's active cluster: it keeps appending one event at a time to a
// set of workflows on whichever cluster it believes is active, moves to the cluster a refusal
// names, backs off on a retryable refusal (a handover), and records every acknowledged event as
// (workflow, event id, version): what a user was promised and may check later.
//
// Used by tests/handover_test.cc (in-process clusters) and tests/failover_e2e_test.cc (processes
// that are killed and restarted, on new ports).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"

namespace xdc {

class LedgerClient {
 public:
  // What a request that got no answer (connection refused or lost) means to the load.
  enum class TransportErrors {
    kFail,   // an error: the clusters were never meant to go away
    kRetry,  // an unknown outcome (a cluster was killed): not acknowledged; back off, re-read
             // the workflow's next event id from the cluster before writing it again
  };
  // The current address of a cluster (it may change when the cluster restarts).
  using AddressOf = std::function<std::string(const std::string& cluster)>;

  static constexpr int kWorkflows = 16;
  static constexpr std::chrono::milliseconds kTransportBackoff{20};

  // Fixed addresses; any transport error is a test failure. Namespace "orders".
  LedgerClient(std::map<std::string, std::string> addresses, std::string active)
      : address_of_([addresses = std::move(addresses)](const std::string& cluster) {
          auto it = addresses.find(cluster);
          return it == addresses.end() ? std::string() : it->second;
        }),
        active_(std::move(active)),
        namespace_name_("orders"),
        transport_errors_(TransportErrors::kFail) {}

  LedgerClient(AddressOf address_of, std::string active, std::string namespace_name,
               TransportErrors transport_errors)
      : address_of_(std::move(address_of)),
        active_(std::move(active)),
        namespace_name_(std::move(namespace_name)),
        transport_errors_(transport_errors) {}

  // Paces the load at about `writes` appends per second (0, the default: as fast as the
  // cluster answers). A steady rate leaves instants at which a standby has caught up, as a
  // verification by content needs. Call before Run.
  void set_writes_per_second(int writes) { writes_per_second_ = writes; }

  // Writes until `stop`, or until more than 20 unexpected errors. Call from one thread.
  void Run(std::atomic<bool>& stop) {
    std::map<std::string, int64_t> next;  // workflow -> next event id
    std::set<std::string> unsure;         // workflows whose last write had an unknown outcome
    auto next_write = std::chrono::steady_clock::now();
    for (int i = 0; !stop.load(); ++i) {
      if (writes_per_second_ > 0) {
        // Pacing the load, not waiting for a condition.
        std::this_thread::sleep_until(next_write);
        next_write += std::chrono::microseconds(1000000 / writes_per_second_);
      }
      const std::string workflow = absl::StrCat("load-", i % kWorkflows);
      HttpClient& client = ClientFor(active_);
      if (unsure.contains(workflow)) {
        GetHistoryResponse history;
        const absl::Status read = client.Call(
            "GET",
            absl::StrCat("/v1/history?namespace=", namespace_name_, "&workflow_id=", workflow),
            nullptr, history);
        if (read.ok()) {
          next[workflow] = history.next_event_id();
        } else if (absl::IsNotFound(read)) {
          next.erase(workflow);
        } else if (absl::IsUnavailable(read)) {
          ++unavailable_;
          std::this_thread::sleep_for(kTransportBackoff);
          continue;
        }
        // Other errors (e.g. the namespace moved): the write below is refused and says where.
      }
      const int64_t expected = next.contains(workflow) ? next[workflow] : 1;
      AppendRequest request;
      request.set_namespace_(namespace_name_);
      request.set_workflow_id(workflow);
      request.set_expected_next_event_id(expected);
      NewEvent* event = request.add_events();
      event->set_event_type(expected == 1 ? WORKFLOW_EXECUTION_STARTED : TIMER_STARTED);
      event->set_attributes("x");
      absl::StatusOr<std::string> body = ToJson(request);
      if (!body.ok()) {
        errors_.push_back(body.status().ToString());
        return;
      }
      absl::StatusOr<HttpResult> raw = client.Request("POST", "/v1/append", *body);
      if (!raw.ok()) {
        if (transport_errors_ == TransportErrors::kRetry) {
          ++unavailable_;
          unsure.insert(workflow);
          std::this_thread::sleep_for(kTransportBackoff);
          continue;
        }
        errors_.push_back(raw.status().ToString());
        if (errors_.size() > 20) return;
        continue;
      }
      if (raw->status == 200) {
        AppendResponse response;
        EXPECT_TRUE(FromJson(raw->body, response).ok()) << raw->body;
        std::lock_guard<std::mutex> lock(mu_);
        acked_.insert({workflow, response.first_event_id(), response.version()});
        versions_.insert(response.version());
        next[workflow] = response.next_event_id();
        unsure.erase(workflow);
        continue;
      }
      ErrorResponse error;
      EXPECT_TRUE(FromJson(raw->body, error).ok()) << raw->body;
      if (error.retryable()) {
        ++refused_retryable_;
        EXPECT_GT(error.retry_after_ms(), 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(error.retry_after_ms() / 10));
        continue;
      }
      if (!error.active_cluster().empty() && error.active_cluster() != active_) {
        active_ = error.active_cluster();  // the namespace moved: follow it
        continue;
      }
      errors_.push_back(raw->body);
      if (errors_.size() > 20) return;
    }
  }

  // How many events were acknowledged so far.
  size_t acked_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_.size();
  }
  // How many were acknowledged at `version`.
  size_t acked_at(int64_t version) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& [workflow, event_id, v] : acked_) n += v == version ? 1 : 0;
    return n;
  }

  // Checks that every acknowledged event is in the workflow's current run on each of `clusters`,
  // at the version it was acknowledged with. Call once Run has returned.
  void ExpectAcknowledgedOn(const std::vector<HttpClient*>& clusters) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::map<std::string, GetHistoryResponse>> histories(clusters.size());
    for (const auto& [workflow, event_id, version] : acked_) {
      for (size_t i = 0; i < clusters.size(); ++i) {
        GetHistoryResponse& history = histories[i][workflow];
        if (history.events_size() == 0) {
          ASSERT_TRUE(clusters[i]
                          ->Call("GET",
                                 absl::StrCat("/v1/history?namespace=", namespace_name_,
                                              "&workflow_id=", workflow),
                                 nullptr, history)
                          .ok());
        }
        ASSERT_GE(history.events_size(), event_id) << workflow;
        EXPECT_EQ(history.events(event_id - 1).version(), version)
            << workflow << " " << event_id << " on " << clusters[i]->address();
      }
    }
  }

  // Read by the test: acked_ and versions_ under mu_; errors_ once Run returned.
  std::mutex mu_;
  std::set<std::tuple<std::string, int64_t, int64_t>> acked_;  // (workflow, event id, version)
  std::set<int64_t> versions_;
  std::atomic<int> refused_retryable_{0};
  std::atomic<int> unavailable_{0};  // requests without an answer (TransportErrors::kRetry)
  std::vector<std::string> errors_;

 private:
  // A client for `cluster`'s current address (a new one when the address changed).
  HttpClient& ClientFor(const std::string& cluster) {
    const std::string address = address_of_(cluster);
    auto& [known, client] = clients_[cluster];
    if (client == nullptr || known != address) {
      known = address;
      client = std::make_unique<HttpClient>(address);
    }
    return *client;
  }

  // Owned by Run's thread.
  const AddressOf address_of_;
  std::string active_;  // the cluster written to
  const std::string namespace_name_;
  const TransportErrors transport_errors_;
  int writes_per_second_ = 0;
  std::map<std::string, std::pair<std::string, std::unique_ptr<HttpClient>>> clients_;
};

}  // namespace xdc
