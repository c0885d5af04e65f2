// xdcctl load: a concurrent workload generator against one xdcd.
//
// Each workflow gets: an append that starts it with `events_per_workflow - 1` events
// (WORKFLOW_EXECUTION_STARTED, then alternating activity/timer events), `signals_per_workflow`
// signals, and a final append completing it. So each workflow ends with
// events_per_workflow + signals_per_workflow events.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace xdc {

struct LoadOptions {
  std::string address;
  std::string namespace_name;
  std::string bearer_token;  // the daemon's API token ("": none), sent on every request
  std::string workflow_prefix = "wf";
  int workflows = 1000;
  int events_per_workflow = 5;  // >= 2 (start ... complete)
  int signals_per_workflow = 1;
  int concurrency = 8;  // client connections
};

struct LoadResult {
  int64_t workflows_completed = 0;
  int64_t requests_ok = 0;
  int64_t requests_failed = 0;
  int64_t events_written = 0;
  double seconds = 0;
  std::string first_error;
};

[[nodiscard]] absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options);

}  // namespace xdc
