#include "replicator/api_handler.h"

#include <cstdio>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "chaos/fault_points.h"
#include "google/protobuf/util/json_util.h"
#include "protocol/history_digest.h"
#include "protocol/version_history.h"
#include "replicator/api_json.h"
#include "replicator/logger.h"

namespace xdc {
namespace {

constexpr std::string_view kFaultPointsPath = "/v1/fault-points";

ApiResponse Json(const google::protobuf::Message& message, int status = 200) {
  return JsonResponse(message, status);
}

ApiResponse Error(const absl::Status& status) { return ErrorResponseFor(status); }

absl::Status ParseBody(const std::string& body, google::protobuf::Message& message) {
  return ParseJsonBody(body, message);
}

std::string PercentDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      int value = 0;
      if (absl::SimpleHexAtoi(std::string(in.substr(i + 1, 2)), &value)) {
        out.push_back(static_cast<char>(value));
        i += 2;
        continue;
      }
    }
    out.push_back(in[i] == '+' ? ' ' : in[i]);
  }
  return out;
}

template <typename Message>
ApiResponse Reply(const absl::StatusOr<Message>& result) {
  return result.ok() ? Json(*result) : Error(result.status());
}

// The answer to POST /v1/append-batch: one result per append.
absl::StatusOr<AppendBatchResponse> AnswerBatch(
    absl::StatusOr<std::vector<absl::StatusOr<AppendResponse>>> results) {
  if (!results.ok()) return results.status();
  AppendBatchResponse response;
  for (const absl::StatusOr<AppendResponse>& result : *results) {
    AppendResult& answer = *response.add_results();
    answer.set_http_status(HttpStatusFor(result.status().code()));
    if (result.ok()) {
      *answer.mutable_appended() = *result;
    } else {
      *answer.mutable_error() = ErrorFor(result.status());
      response.set_failed(response.failed() + 1);
    }
  }
  return response;
}

template <typename Request, typename Handler>
ApiResponse Call(const std::string& body, Handler handler) {
  Request request;
  if (absl::Status s = ParseBody(body, request); !s.ok()) return Error(s);
  auto result = handler(request);
  if (!result.ok()) return Error(result.status());
  return Json(*result);
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 507;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kUnimplemented:
      return 501;
    default:
      return 500;
  }
}

ApiHandler::ApiHandler(const Tunables& tunables, Store& store, NamespaceRegistry& namespaces,
                       WriteService& writes, DlqService& dlq, HandoverCoordinator& handover,
                       std::function<StatusResponse()> status,
                       std::function<ReadinessResponse()> readiness,
                       AcknowledgeMissingFn acknowledge_missing, xdc::Metrics& metrics,
                       const ContentDigestService& content_digests, RunRepairer& repairer)
    : tunables_(tunables),
      store_(store),
      namespaces_(namespaces),
      handover_(handover),
      writes_(writes),
      dlq_(dlq),
      status_(std::move(status)),
      readiness_(std::move(readiness)),
      acknowledge_missing_(std::move(acknowledge_missing)),
      metrics_(metrics),
      content_digests_(content_digests),
      repairer_(repairer) {}

namespace {

constexpr std::string_view kNamespacePrefix = "/v1/namespaces/";

// The paths of the API with the methods each takes (for 405 answers).
const std::map<std::string, std::string>& AllowedMethods() {
  static const auto* const kAllowed =
      new std::map<std::string, std::string>{{"/healthz", "GET"},
                                             {"/readyz", "GET"},
                                             {"/metrics", "GET"},
                                             {"/v1/status", "GET"},
                                             {"/v1/history", "GET"},
                                             {"/v1/digests", "GET"},
                                             {"/v1/dlq", "GET"},
                                             {"/v1/append", "POST"},
                                             {"/v1/append-batch", "POST"},
                                             {"/v1/signal", "POST"},
                                             {"/v1/namespaces", "GET or POST"},
                                             {"/v1/dlq/retry", "POST"},
                                             {"/v1/dlq/purge", "POST"},
                                             {"/v1/missing-tasks/acknowledge", "POST"},
                                             {"/v1/digest-tree", "GET"},
                                             {"/v1/digest-leaves", "GET"},
                                             {"/v1/migration/repair", "POST"}};
  return *kAllowed;
}

// /v1/namespaces/{name}/{action}: the actions ("" is the record itself) with their methods.
const std::map<std::string, std::string>& NamespaceActions() {
  static const auto* const kActions = new std::map<std::string, std::string>{
      {"", "GET"}, {"describe", "GET"}, {"failover", "POST"}, {"cancel-handover", "POST"}};
  return *kActions;
}

// The route template of `path` for metrics labels (bounded: never a namespace name), or
// "unmatched".
std::string RouteTemplate(const std::string& path) {
  if (AllowedMethods().contains(path) || path == kFaultPointsPath) return path;
  if (path.starts_with(kNamespacePrefix) && path.size() > kNamespacePrefix.size()) {
    const std::string rest = path.substr(kNamespacePrefix.size());
    const size_t slash = rest.find('/');
    const std::string action = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (NamespaceActions().contains(action)) {
      return action.empty() ? "/v1/namespaces/{name}" : "/v1/namespaces/{name}/" + action;
    }
  }
  return "unmatched";
}

}  // namespace

ApiResponse ApiHandler::Handle(const ApiRequest& request) {
  const size_t question = request.target.find('?');
  const std::string path = request.target.substr(0, question);
  Query query;
  if (question != std::string::npos) {
    for (absl::string_view piece : absl::StrSplit(request.target.substr(question + 1), '&')) {
      const std::string_view pair(piece.data(), piece.size());
      if (pair.empty()) continue;
      const size_t eq = pair.find('=');
      query[PercentDecode(pair.substr(0, eq))] =
          eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
    }
  }
  ApiResponse response = Route(request.method, path, query, request.body);
  response.route = RouteTemplate(path);
  return response;
}

ApiResponse ApiHandler::Route(const std::string& method, const std::string& path,
                              const Query& query, const std::string& body) {
  const bool get = method == "GET";
  const bool post = method == "POST";
  if (path == "/healthz" && get) return MakeApiResponse(200, "text/plain", "ok\n");
  if (path == "/readyz" && get) {
    // 200 when ready, else 503; the body names every check either way.
    const ReadinessResponse readiness = readiness_();
    ApiResponse response = Json(readiness);
    if (!readiness.ready()) response.status = 503;
    return response;
  }
  if (path == "/metrics" && get) return Metrics();
  if (path == "/v1/status" && get) return Json(status_());
  if (path == "/v1/history" && get) return History(query);
  if (path == "/v1/digests" && get) return Digests(query);
  if (path == "/v1/dlq" && get) return Dlq(query);
  if (path == "/v1/digest-tree" && get) return Reply(content_digests_.Tree(query));
  if (path == "/v1/digest-leaves" && get) return Reply(content_digests_.Leaves(query));
  if (path == "/v1/migration/repair" && post) {
    return Call<RepairRunsRequest>(
        body, [&](const RepairRunsRequest& r) { return repairer_.Request(r); });
  }
  if (path == kFaultPointsPath) return FaultPoints(method, body);
  if (path == "/v1/append" && post) {
    return Call<AppendRequest>(body, [&](const AppendRequest& r) { return writes_.Append(r); });
  }
  if (path == "/v1/append-batch" && post) {
    return Call<AppendBatchRequest>(body, [&](const AppendBatchRequest& r) {
      return AnswerBatch(writes_.AppendBatch(r.appends()));
    });
  }
  if (path == "/v1/signal" && post) {
    return Call<SignalRequest>(body, [&](const SignalRequest& r) { return writes_.Signal(r); });
  }
  if (path == "/v1/namespaces" && post) {
    return Call<RegisterNamespaceRequest>(
        body, [&](const RegisterNamespaceRequest& r) { return namespaces_.Register(r); });
  }
  if (path == "/v1/namespaces" && get) {
    ListNamespacesResponse response;
    for (NamespaceRecord& record : namespaces_.List()) *response.add_namespaces() = record;
    return Json(response);
  }
  // /v1/namespaces/{name}/{action}: the action is the last segment (names have no '/').
  std::string name;
  std::string action;
  if (path.starts_with(kNamespacePrefix)) {
    const std::string rest = path.substr(kNamespacePrefix.size());
    const size_t slash = rest.find('/');
    name = PercentDecode(rest.substr(0, slash));
    if (slash != std::string::npos) action = rest.substr(slash + 1);
  }
  if (!name.empty() && action == "failover" && post) {
    return Call<FailoverRequest>(
        body, [&](const FailoverRequest& r) { return handover_.Failover(name, r); });
  }
  if (!name.empty() && action == "cancel-handover" && post) {
    CancelHandoverRequest request;
    if (!body.empty()) {
      if (absl::Status s = ParseBody(body, request); !s.ok()) return Error(s);
    }
    absl::StatusOr<NamespaceRecord> record = handover_.Cancel(name, request.reason());
    if (!record.ok()) return Error(record.status());
    return Json(*record);
  }
  if (!name.empty() && action == "describe" && get) {
    absl::StatusOr<DescribeNamespaceResponse> described = handover_.Describe(name);
    if (!described.ok()) return Error(described.status());
    return Json(*described);
  }
  if (path == "/v1/dlq/retry" && post) {
    return Call<DlqRequest>(body, [&](const DlqRequest& r) { return dlq_.Retry(r); });
  }
  if (path == "/v1/dlq/purge" && post) {
    return Call<DlqRequest>(body, [&](const DlqRequest& r) { return dlq_.Purge(r); });
  }
  if (path == "/v1/missing-tasks/acknowledge" && post) {
    return Call<AcknowledgeMissingTasksRequest>(body, acknowledge_missing_);
  }
  if (!name.empty() && action.empty() && get) {
    absl::StatusOr<NamespaceRecord> record = namespaces_.Get(name);
    if (!record.ok()) return Error(record.status());
    return Json(*record);
  }
  // A known path asked with the wrong method: 405 with the method it takes.
  auto allowed = AllowedMethods().find(path);
  auto action_allowed = NamespaceActions().find(action);
  if (name.empty() ? allowed != AllowedMethods().end()
                   : action_allowed != NamespaceActions().end()) {
    ApiResponse response = Error(absl::InvalidArgumentError(
        absl::StrFormat("%s does not take %s; use %s", path, method,
                        name.empty() ? allowed->second : action_allowed->second)));
    response.status = 405;
    return response;
  }
  return Error(absl::NotFoundError(
      absl::StrFormat("no route %s %s; see docs/api.md for the API", method, path)));
}

namespace {

absl::StatusOr<std::string> Required(const std::map<std::string, std::string>& query,
                                     const std::string& name) {
  auto it = query.find(name);
  if (it == query.end() || it->second.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat("query parameter '%s' is required", name));
  }
  return it->second;
}

// The branch GET /v1/history shows: the query's `branch` (absent or empty: the current one).
// INVALID_ARGUMENT for a value that is not a branch index, NOT_FOUND for one the run does not
// have; both name the run's valid range.
absl::StatusOr<int32_t> BranchIndex(const std::map<std::string, std::string>& query,
                                    const VersionHistories& histories,
                                    const std::string& workflow_id, const std::string& run_id) {
  auto it = query.find("branch");
  if (it == query.end() || it->second.empty()) return histories.current_index();
  const int count = histories.histories_size();
  const std::string range = absl::StrFormat(
      "workflow '%s' run '%s' has %d branch%s, 0 to %d (the current one is %d)", workflow_id,
      run_id, count, count == 1 ? "" : "es", count - 1, histories.current_index());
  int64_t asked = 0;
  if (!absl::SimpleAtoi(it->second, &asked) || asked < 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "query parameter 'branch' must be a branch index, a number from 0 to %d, not '%s': %s",
        count - 1, it->second, range));
  }
  if (asked >= count) {
    return absl::NotFoundError(absl::StrFormat("branch %d does not exist: %s", asked, range));
  }
  return static_cast<int32_t>(asked);
}

}  // namespace

ApiResponse ApiHandler::History(const Query& query) {
  absl::StatusOr<std::string> name = Required(query, "namespace");
  absl::StatusOr<std::string> workflow_id = Required(query, "workflow_id");
  if (!name.ok()) return Error(name.status());
  if (!workflow_id.ok()) return Error(workflow_id.status());
  absl::StatusOr<NamespaceRecord> ns = namespaces_.Get(*name);
  if (!ns.ok()) return Error(ns.status());
  WorkflowKey key;
  key.set_namespace_id(ns->id());
  key.set_workflow_id(*workflow_id);
  auto run = query.find("run_id");
  if (run != query.end() && !run->second.empty()) {
    key.set_run_id(run->second);
  } else {
    absl::StatusOr<std::string> current = namespaces_.CurrentRun(*ns, *workflow_id);
    if (!current.ok()) return Error(current.status());
    key.set_run_id(*current);
  }
  absl::StatusOr<std::optional<WorkflowMutableState>> state = store_.GetWorkflowState(key);
  if (!state.ok()) return Error(state.status());
  if (!state->has_value()) {
    return Error(absl::NotFoundError(
        absl::StrFormat("workflow '%s' run '%s' not found", *workflow_id, key.run_id())));
  }
  const VersionHistories& histories = (*state)->version_histories();
  const VersionHistory* current = CurrentBranch(histories);
  if (current == nullptr) {
    return Error(absl::DataLossError(absl::StrFormat(
        "workflow '%s' run '%s': the stored state has no current branch (index %d "
        "of %d branches)",
        *workflow_id, key.run_id(), histories.current_index(), histories.histories_size())));
  }
  absl::StatusOr<int32_t> index = BranchIndex(query, histories, *workflow_id, key.run_id());
  if (!index.ok()) return Error(index.status());
  const VersionHistory* branch = &histories.histories(*index);
  absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> events =
      store_.ReadBranch(key, *branch);
  if (!events.ok()) return Error(events.status());
  GetHistoryResponse response;
  *response.mutable_workflow() = key;
  response.set_namespace_(*name);
  response.set_digest(HistoryDigest(*branch, *events));
  response.set_branch(*index);
  response.set_current_branch(*index == histories.current_index());
  if (*index == histories.current_index()) {
    response.set_shared_with_current_through_event_id(LastEventId(*branch));
  } else if (absl::StatusOr<VersionHistoryItem> lca = FindLowestCommonAncestor(*branch, *current);
             lca.ok()) {
    response.set_shared_with_current_through_event_id(lca->event_id());
  }
  *response.mutable_events() = *std::move(events);
  *response.mutable_version_histories() = (*state)->version_histories();
  response.set_next_event_id((*state)->next_event_id());
  response.set_status((*state)->status());
  return Json(response);
}

ApiResponse ApiHandler::Digests(const Query& query) {
  absl::StatusOr<std::string> name = Required(query, "namespace");
  if (!name.ok()) return Error(name.status());
  absl::StatusOr<NamespaceRecord> ns = namespaces_.Get(*name);
  if (!ns.ok()) return Error(ns.status());
  ListDigestsResponse response;
  response.set_namespace_(*name);
  absl::Status s = store_.ForEachWorkflow(ns->id(), [&](const WorkflowMutableState& state) {
    const VersionHistory* branch = CurrentBranch(state.version_histories());
    absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> events =
        store_.ReadBranch(state.key(), *branch);
    if (!events.ok()) return events.status();
    WorkflowDigest* digest = response.add_workflows();
    digest->set_workflow_id(state.key().workflow_id());
    digest->set_run_id(state.key().run_id());
    digest->set_next_event_id(state.next_event_id());
    digest->set_digest(HistoryDigest(*branch, *events));
    absl::StatusOr<std::optional<std::string>> current =
        store_.GetCurrentRun(state.key().namespace_id(), state.key().workflow_id());
    if (!current.ok()) return current.status();
    digest->set_current(current->has_value() && **current == state.key().run_id());
    return absl::OkStatus();
  });
  if (!s.ok()) return Error(s);
  return Json(response);
}

ApiResponse ApiHandler::Dlq(const Query& query) {
  size_t limit = tunables_.dlq_list_default_limit;
  if (auto it = query.find("limit"); it != query.end()) {
    if (!absl::SimpleAtoi(it->second, &limit) || limit == 0 ||
        limit > tunables_.dlq_list_max_limit) {
      return Error(absl::InvalidArgumentError(
          absl::StrFormat("limit must be a number from 1 to %d", tunables_.dlq_list_max_limit)));
    }
  }
  absl::StatusOr<std::vector<ParkedTask>> tasks = store_.ListParked(limit);
  if (!tasks.ok()) return Error(tasks.status());
  ListParkedResponse response;
  for (ParkedTask& task : *tasks) *response.add_tasks() = std::move(task);
  return Json(response);
}

ApiResponse ApiHandler::FaultPoints(const std::string& method, const std::string& body) {
  if (tunables_.fault_point_api != FaultPointApi::kEnabled) {
    return Error(absl::NotFoundError(
        "the fault-point API is disabled: it is for tests and the chaos suite; start xdcd with "
        "XDC_ENABLE_FAULT_POINTS=1"));
  }
  if (method == "POST") {
    FaultPointsRequest request;
    if (absl::Status s = ParseBody(body, request); !s.ok()) return Error(s);
    std::vector<std::string> unknown;
    for (const auto* names : {&request.arm(), &request.disarm()}) {
      for (const std::string& name : *names) {
        if (!fault::IsKnown(name)) unknown.push_back(absl::StrCat("'", name, "'"));
      }
    }
    if (!unknown.empty()) {
      std::vector<std::string> known(fault::kKnownFaultPoints.begin(),
                                     fault::kKnownFaultPoints.end());
      // Nothing is changed: a typo must not leave the caller believing a fault is armed.
      return Error(absl::InvalidArgumentError(absl::StrFormat(
          "unknown fault point %s: the known ones are %s, %s<peer> and "
          "%s<cluster> (see docs/configuration.md#fault-points); nothing was "
          "changed",
          absl::StrJoin(unknown, ", "), absl::StrJoin(known, ", "),
          std::string(fault::kApplyHoldPrefix), std::string(fault::kPublishProducerFatalPrefix))));
    }
    for (const std::string& name : request.arm()) fault::Arm(name);
    for (const std::string& name : request.disarm()) fault::Disarm(name);
    if (request.arm_size() + request.disarm_size() > 0) {
      log::Write(log::Level::kWarning, "",
                 absl::StrFormat("fault points changed through the API: armed [%s], disarmed [%s]",
                                 absl::StrJoin(request.arm(), ", ").c_str(),
                                 absl::StrJoin(request.disarm(), ", ").c_str()));
    }
  } else if (method != "GET") {
    ApiResponse response = Error(absl::InvalidArgumentError(absl::StrFormat(
        "%s does not take %s; use GET or POST", std::string(kFaultPointsPath), method)));
    response.status = 405;
    return response;
  }
  FaultPointsResponse response;
  for (std::string& name : fault::ArmedNames()) response.add_armed(std::move(name));
  return Json(response);
}

ApiResponse ApiHandler::Metrics() {
  StatusResponse status = status_();
  metrics_.SetStoreWriteFailed(!status.store_write_error().empty());
  const StoreEngineStats engine = store_.EngineStats();
  metrics_.SetStoreEngine(static_cast<double>(engine.sst_bytes),
                          static_cast<double>(engine.memtable_bytes),
                          static_cast<double>(engine.pending_compaction_bytes),
                          engine.writes_stopped || engine.delayed_write_rate > 0);
  for (const NamespaceGauges& gauges : handover_.Gauges()) metrics_.SetNamespace(gauges);
  metrics_.SetDlqDepth(static_cast<double>(status.parked_tasks()),
                       static_cast<double>(status.dlq_awaiting_resend()));
  for (const ShardStatus& shard : status.shards()) {
    metrics_.SetOutboxBacklog(shard.shard(), static_cast<double>(shard.outbox_next_task_id() -
                                                                 shard.published_task_id()));
    metrics_.SetPublishFailures(shard.shard(), static_cast<double>(shard.publish_failures()));
    for (const PeerShardStatus& peer : shard.peers()) {
      metrics_.SetPeerShard(peer.peer(), shard.shard(), static_cast<double>(peer.lag_tasks()),
                            peer.lag_seconds(), static_cast<double>(peer.missing_tasks()));
    }
  }
  return MakeApiResponse(200, "text/plain; version=0.0.4", metrics_.Serialize());
}

}  // namespace xdc
