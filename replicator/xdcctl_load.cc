#include "replicator/xdcctl_load.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"

namespace xdc {
namespace {

// Writes one workflow; returns the number of events written or the first error.
absl::StatusOr<int64_t> WriteWorkflow(HttpClient& client, const LoadOptions& options,
                                      const std::string& workflow_id, int64_t& requests_ok) {
  AppendRequest start;
  start.set_namespace_(options.namespace_name);
  start.set_workflow_id(workflow_id);
  start.set_expected_next_event_id(1);
  start.add_events()->set_event_type(WORKFLOW_EXECUTION_STARTED);
  start.mutable_events(0)->set_attributes(absl::StrFormat("input of %s", workflow_id));
  for (int i = 1; i < options.events_per_workflow - 1; ++i) {
    NewEvent* event = start.add_events();
    event->set_event_type(i % 2 == 1 ? ACTIVITY_TASK_SCHEDULED : ACTIVITY_TASK_COMPLETED);
    event->set_attributes(absl::StrFormat("step %d of %s", i, workflow_id));
  }
  AppendResponse response;
  if (absl::Status s = client.Call("POST", "/v1/append", &start, response); !s.ok()) return s;
  ++requests_ok;
  const std::string run_id = response.run_id();
  for (int i = 0; i < options.signals_per_workflow; ++i) {
    SignalRequest signal;
    signal.set_namespace_(options.namespace_name);
    signal.set_workflow_id(workflow_id);
    signal.set_run_id(run_id);
    signal.set_signal_name(absl::StrFormat("signal-%d", i));
    signal.set_input(absl::StrFormat("payload %d for %s", i, workflow_id));
    if (absl::Status s = client.Call("POST", "/v1/signal", &signal, response); !s.ok()) return s;
    ++requests_ok;
  }
  AppendRequest complete;
  complete.set_namespace_(options.namespace_name);
  complete.set_workflow_id(workflow_id);
  complete.set_run_id(run_id);
  complete.set_expected_next_event_id(response.next_event_id());
  complete.add_events()->set_event_type(WORKFLOW_EXECUTION_COMPLETED);
  if (absl::Status s = client.Call("POST", "/v1/append", &complete, response); !s.ok()) return s;
  ++requests_ok;
  return response.next_event_id() - 1;
}

}  // namespace

absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options) {
  if (options.events_per_workflow < 2) {
    return absl::InvalidArgumentError("--events-per-workflow must be at least 2");
  }
  if (options.workflows < 1 || options.concurrency < 1 || options.signals_per_workflow < 0) {
    return absl::InvalidArgumentError(
        "--workflows and --concurrency must be positive, --signals non-negative");
  }
  std::atomic<int> next{0};
  std::mutex mu;
  LoadResult result;
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < options.concurrency; ++t) {
    threads.emplace_back([&] {
      HttpClient client(options.address);
      client.set_bearer_token(options.bearer_token);
      int64_t ok = 0, failed = 0, events = 0, completed = 0;
      std::string first_error;
      for (int i = next++; i < options.workflows; i = next++) {
        absl::StatusOr<int64_t> written = WriteWorkflow(
            client, options, absl::StrFormat("%s-%06d", options.workflow_prefix, i), ok);
        if (written.ok()) {
          events += *written;
          ++completed;
        } else {
          ++failed;
          if (first_error.empty()) first_error = written.status().ToString();
        }
      }
      std::lock_guard lock(mu);
      result.requests_ok += ok;
      result.requests_failed += failed;
      result.events_written += events;
      result.workflows_completed += completed;
      if (result.first_error.empty()) result.first_error = first_error;
    });
  }
  for (std::thread& thread : threads) thread.join();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace xdc
