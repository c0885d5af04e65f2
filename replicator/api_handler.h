// The HTTP/JSON API, independent of the HTTP library: a request in, a response out.
//
//   POST /v1/namespaces              RegisterNamespaceRequest -> NamespaceRecord
//   GET  /v1/namespaces              -> ListNamespacesResponse
//   GET  /v1/namespaces/{name}       -> NamespaceRecord
//   GET  /v1/namespaces/{name}/describe  -> DescribeNamespaceResponse (handover, failover damage)
//   POST /v1/namespaces/{name}/failover  FailoverRequest -> NamespaceRecord (graceful or forced)
//   POST /v1/namespaces/{name}/cancel-handover  [CancelHandoverRequest] -> NamespaceRecord
//   POST /v1/append                  AppendRequest -> AppendResponse
//   POST /v1/signal                  SignalRequest -> AppendResponse
//   GET  /v1/history?namespace=&workflow_id=[&run_id=][&branch=]   -> GetHistoryResponse
//   GET  /v1/digests?namespace=      -> ListDigestsResponse
//   GET  /v1/digest-tree?namespace=&shard=        -> DigestTreeResponse (content_digest_service.h)
//   GET  /v1/digest-leaves?namespace=&shard=[&buckets=&page_token=&limit=] -> DigestLeavesResponse
//   POST /v1/migration/repair        RepairRunsRequest -> RepairRunsResponse (run_repairer.h)
//   GET  /v1/status                  -> StatusResponse
//   GET  /v1/dlq[?limit=]            -> ListParkedResponse
//   POST /v1/dlq/retry               DlqRequest -> DlqActionResponse
//   POST /v1/dlq/purge               DlqRequest -> DlqActionResponse
//   POST /v1/missing-tasks/acknowledge  AcknowledgeMissingTasksRequest
//                                    -> AcknowledgeMissingTasksResponse (PeerApplier)
//   GET  /v1/fault-points            -> FaultPointsResponse (the armed fault points)
//   POST /v1/fault-points            FaultPointsRequest -> FaultPointsResponse (arm, then disarm)
//   GET  /metrics                    Prometheus text format
//   GET  /healthz                    "ok"
//
// The fault-point routes are for tests and the chaos suite: they exist only with
// tunables.fault_point_api == kEnabled (xdcd: XDC_ENABLE_FAULT_POINTS=1) and answer 404 otherwise.
// A POST naming an unknown fault point (chaos/fault_points.h IsKnown) changes nothing and is
// answered 400. Fault points are per process: arming one affects every daemon in the process.
//
// Bodies use protobuf's JSON mapping (field names as in protocol/xdc.proto). Errors are an
// ErrorResponse with an HTTP status derived from the absl status code (docs/api.md).
//
// Thread-safe: handles requests concurrently.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "protocol/xdc.pb.h"
#include "replicator/content_digest_service.h"
#include "replicator/dlq_service.h"
#include "replicator/handover_coordinator.h"
#include "replicator/metrics.h"
#include "replicator/namespace_registry.h"
#include "replicator/run_repairer.h"
#include "replicator/tunables.h"
#include "replicator/write_service.h"
#include "store/store.h"

namespace xdc {

struct ApiRequest {
  std::string method;  // "GET", "POST"
  std::string target;  // path with optional query string
  std::string body;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // The route template that answered, e.g. "/v1/namespaces/{name}" (a metrics label: never a
  // name or id); empty when none matched.
  std::string route;
};

// An answer with no route set yet (Handle sets it).
inline ApiResponse MakeApiResponse(int status, std::string content_type, std::string body) {
  ApiResponse response;
  response.status = status;
  response.content_type = std::move(content_type);
  response.body = std::move(body);
  return response;
}

// HTTP status for an absl status code.
[[nodiscard]] int HttpStatusFor(absl::StatusCode code);

class ApiHandler {
 public:
  using AcknowledgeMissingFn = std::function<absl::StatusOr<AcknowledgeMissingTasksResponse>(
      const AcknowledgeMissingTasksRequest&)>;
  ApiHandler(const Tunables& tunables, Store& store, NamespaceRegistry& namespaces,
             WriteService& writes, DlqService& dlq, HandoverCoordinator& handover,
             std::function<StatusResponse()> status, std::function<ReadinessResponse()> readiness,
             AcknowledgeMissingFn acknowledge_missing, Metrics& metrics,
             const ContentDigestService& content_digests, RunRepairer& repairer);

  [[nodiscard]] ApiResponse Handle(const ApiRequest& request);

 private:
  using Query = std::map<std::string, std::string>;
  [[nodiscard]] ApiResponse Route(const std::string& method, const std::string& path,
                                  const Query& query, const std::string& body);
  [[nodiscard]] ApiResponse History(const Query& query);
  [[nodiscard]] ApiResponse Digests(const Query& query);
  [[nodiscard]] ApiResponse Dlq(const Query& query);
  [[nodiscard]] ApiResponse FaultPoints(const std::string& method, const std::string& body);
  [[nodiscard]] ApiResponse Metrics();

  const Tunables& tunables_;
  Store& store_;
  NamespaceRegistry& namespaces_;
  HandoverCoordinator& handover_;
  WriteService& writes_;
  DlqService& dlq_;
  std::function<StatusResponse()> status_;
  std::function<ReadinessResponse()> readiness_;
  AcknowledgeMissingFn acknowledge_missing_;
  xdc::Metrics& metrics_;
  const ContentDigestService& content_digests_;
  RunRepairer& repairer_;
};

}  // namespace xdc
