#include "chaos/workload.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace xdc::chaos {
namespace {

// Event types of the appends after a run's start: none closes the run, none is reapplicable, so
// an append on a losing branch is lost (the failover's RPO) and a signal never meets a closed run.
constexpr EventType kAppendTypes[] = {ACTIVITY_TASK_SCHEDULED, ACTIVITY_TASK_COMPLETED,
                                      TIMER_STARTED, TIMER_FIRED};

std::string RandomWriterId() {
  std::random_device device;
  return absl::StrFormat("w%08x%08x", device(), device());
}

}  // namespace

absl::string_view KindName(AckedWrite::Kind kind) {
  return kind == AckedWrite::Kind::kSignal ? "signal" : "append";
}

std::optional<std::string> RequestIdOf(const HistoryEvent& event) {
  std::string payload;
  if (event.event_type() == WORKFLOW_EXECUTION_SIGNALED) {
    SignalAttributes attributes;
    if (!attributes.ParseFromString(event.attributes())) return std::nullopt;
    payload = attributes.input();
  } else {
    payload = event.attributes();
  }
  if (!absl::StartsWith(payload, kRequestIdMarker)) return std::nullopt;
  return payload.substr(kRequestIdMarker.size());
}

std::string QueryEscape(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      absl::StrAppendFormat(&out, "%%%02X", u);
    }
  }
  return out;
}

Workload::Workload(WorkloadOptions options, std::vector<std::string> clusters,
                   std::string initial_active, AddressOf address_of)
    : options_(std::move(options)),
      clusters_(std::move(clusters)),
      address_of_(std::move(address_of)),
      writer_id_(options_.writer_id.empty() ? RandomWriterId() : options_.writer_id),
      random_(options_.seed),
      workflows_(std::max(1, options_.workflows)),
      active_(std::move(initial_active)) {}

Workload::~Workload() { Stop(); }

void Workload::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void Workload::Stop() {
  {
    absl::MutexLock lock(&stop_mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<AckedWrite> Workload::Ledger() const {
  absl::MutexLock lock(&mu_);
  return ledger_;
}

Workload::Stats Workload::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::string Workload::active() const {
  absl::MutexLock lock(&mu_);
  return active_;
}

void Workload::SetActive(std::string cluster) {
  absl::MutexLock lock(&mu_);
  active_ = std::move(cluster);
}

std::string Workload::WorkflowId(int index) const {
  return absl::StrFormat("%s-%06d", options_.workflow_prefix, index);
}

std::string Workload::NextRequestId() { return absl::StrCat(writer_id_, "-", ++sequence_); }

bool Workload::Pause(std::chrono::milliseconds duration) {
  absl::MutexLock lock(&stop_mu_);
  stop_mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(duration));
  return !stopping_;
}

HttpClient* Workload::ClientFor(const std::string& cluster) {
  const std::string address = address_of_(cluster);
  if (address.empty()) return nullptr;
  auto& [known, client] = clients_[cluster];
  if (client == nullptr || known != address) {
    known = address;
    client = std::make_unique<HttpClient>(address, options_.request_timeout);
    client->set_bearer_token(options_.bearer_token);
  }
  return client.get();
}

void Workload::Run() {
  std::uniform_int_distribution<int> pick(0, static_cast<int>(workflows_.size()) - 1);
  const auto started = std::chrono::steady_clock::now();
  for (int64_t n = 0;; ++n) {
    if (options_.rate_per_second > 0) {
      const auto slot = started + std::chrono::microseconds(n * 1000000 / options_.rate_per_second);
      absl::MutexLock lock(&stop_mu_);
      stop_mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                                absl::FromChrono(slot - std::chrono::steady_clock::now()));
    }
    {
      absl::MutexLock lock(&stop_mu_);
      if (stopping_) return;
    }
    WriteOnce(pick(random_));
  }
}

void Workload::WriteOnce(int index) {
  // Every choice is drawn on every call, so the sequence of choices depends on the seed alone.
  std::uniform_real_distribution<double> roll(0.0, 1.0);
  std::uniform_int_distribution<size_t> type_pick(0, std::size(kAppendTypes) - 1);
  const bool wants_signal = roll(random_) < options_.signal_fraction;
  const EventType append_type = kAppendTypes[type_pick(random_)];

  WorkflowState& state = workflows_[index];
  const std::string workflow_id = WorkflowId(index);
  const std::string cluster = active();
  HttpClient* client = ClientFor(cluster);
  if (client == nullptr) {
    HandleTransportError(absl::UnavailableError(absl::StrCat("cannot connect: ", cluster,
                                                             " has no address (it is down)")),
                         state);
    return;
  }
  if (!state.known && !ReadWorkflow(workflow_id, state)) return;

  const bool signal = wants_signal && !state.run_id.empty();
  const std::string request_id = NextRequestId();
  const std::string payload = absl::StrCat(kRequestIdMarker, request_id);
  absl::StatusOr<std::string> body;
  if (signal) {
    SignalRequest request;
    request.set_namespace_(options_.namespace_name);
    request.set_workflow_id(workflow_id);
    request.set_run_id(state.run_id);
    request.set_signal_name(std::string(kSignalName));
    request.set_input(payload);
    body = ToJson(request);
  } else {
    AppendRequest request;
    request.set_namespace_(options_.namespace_name);
    request.set_workflow_id(workflow_id);
    request.set_run_id(state.run_id);
    request.set_expected_next_event_id(state.run_id.empty() ? 1 : state.next_event_id);
    NewEvent* event = request.add_events();
    event->set_event_type(state.run_id.empty() ? WORKFLOW_EXECUTION_STARTED : append_type);
    event->set_attributes(payload);
    body = ToJson(request);
  }
  if (!body.ok()) {
    NoteUnexpected(body.status().ToString());
    return;
  }
  absl::StatusOr<HttpResult> result =
      client->Request("POST", signal ? "/v1/signal" : "/v1/append", *body);
  if (!result.ok()) {
    HandleTransportError(result.status(), state);
    return;
  }
  transport_errors_in_a_row_ = 0;
  if (result->status == 200) {
    AppendResponse response;
    if (absl::Status parsed = FromJson(result->body, response); !parsed.ok()) {
      // Acknowledged, but we cannot tell what: the outcome is as good as unknown.
      state.known = false;
      NoteUnexpected(absl::StrCat("unparseable acknowledgement: ", parsed.ToString()));
      return;
    }
    state.known = true;
    state.run_id = response.run_id();
    state.next_event_id = response.next_event_id();
    RecordAck(signal ? AckedWrite::Kind::kSignal : AckedWrite::Kind::kAppend, workflow_id, cluster,
              request_id, response);
    return;
  }
  HandleRefusal(*result, state);
}

bool Workload::ReadWorkflow(const std::string& workflow_id, WorkflowState& state) {
  HttpClient* client = ClientFor(active());
  if (client == nullptr) return false;
  absl::StatusOr<HttpResult> result = client->Request(
      "GET", absl::StrCat("/v1/history?namespace=", QueryEscape(options_.namespace_name),
                          "&workflow_id=", QueryEscape(workflow_id)));
  if (!result.ok()) {
    // A read changes nothing: whatever failed, nothing was written.
    HandleTransportError(absl::UnavailableError(absl::StrCat("cannot connect: read failed: ",
                                                             result.status().ToString())),
                         state);
    return false;
  }
  transport_errors_in_a_row_ = 0;
  if (result->status == 404) {  // no run here (yet): the next write starts one
    state = WorkflowState{.known = true, .run_id = "", .next_event_id = 1};
    return true;
  }
  GetHistoryResponse history;
  if (result->status != 200 || !FromJson(result->body, history).ok()) {
    NoteUnexpected(
        absl::StrCat("reading ", workflow_id, ": HTTP ", result->status, " ", result->body));
    Pause(kRefusedBackoff);
    return false;
  }
  if (history.status() == WORKFLOW_STATUS_COMPLETED ||
      history.status() == WORKFLOW_STATUS_TERMINATED) {
    // Closed by another client (the workload never closes a run): the next write starts a new run.
    state = WorkflowState{.known = true, .run_id = "", .next_event_id = 1};
    return true;
  }
  state = WorkflowState{.known = true,
                        .run_id = history.workflow().run_id(),
                        .next_event_id = history.next_event_id()};
  return true;
}

void Workload::HandleTransportError(const absl::Status& status, WorkflowState& state) {
  state.known = false;
  // HttpClient says "cannot connect"/"cannot resolve" when nothing was sent.
  const bool sent = !absl::StrContains(status.message(), "cannot connect") &&
                    !absl::StrContains(status.message(), "cannot resolve");
  {
    absl::MutexLock lock(&mu_);
    ++(sent ? stats_.unknown_outcome : stats_.transport_errors);
  }
  if (++transport_errors_in_a_row_ >= kTransportErrorsBeforeProbing && clusters_.size() > 1) {
    // The active cluster may be gone for good: ask the next one, which takes the write or names
    // the active cluster.
    transport_errors_in_a_row_ = 0;
    const std::string current = active();
    auto it = std::find(clusters_.begin(), clusters_.end(), current);
    const size_t next = it == clusters_.end() ? 0 : (it - clusters_.begin() + 1) % clusters_.size();
    SetActive(clusters_[next]);
  }
  Pause(kTransportBackoff);
}

void Workload::HandleRefusal(const HttpResult& result, WorkflowState& state) {
  ErrorResponse error;
  const bool parsed = FromJson(result.body, error).ok() && !error.code().empty();
  if (!parsed || (result.status != 409 && result.status != 503 && result.status != 404)) {
    NoteUnexpected(absl::StrCat("HTTP ", result.status, ": ", result.body));
    Pause(kRefusedBackoff);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    ++stats_.refused;
  }
  if (result.status == 404) {  // the run is not on this cluster (a failover moved us): re-read
    state.known = false;
    Pause(kRefusedBackoff);
    return;
  }
  if (error.retryable()) {  // a handover: retry here after the hint
    const auto hint = std::chrono::milliseconds(error.retry_after_ms());
    Pause(hint.count() > 0 ? std::min(hint, kMaxRetryAfter) : kRefusedBackoff);
    return;
  }
  const std::string current = active();
  if (!error.active_cluster().empty() && error.active_cluster() != current) {
    SetActive(error.active_cluster());  // the namespace moved: follow it
    return;
  }
  if (result.status == 409 && error.active_cluster().empty()) {
    // A stale expected_next_event_id, or a run with events newer than this cluster's record.
    state.known = false;
    if (absl::StrContains(error.message(), "expected_next_event_id")) return;
  }
  Pause(kRefusedBackoff);
}

void Workload::RecordAck(AckedWrite::Kind kind, const std::string& workflow_id,
                         const std::string& cluster, const std::string& request_id,
                         const AppendResponse& response) {
  AckedWrite write;
  write.kind = kind;
  write.workflow_id = workflow_id;
  write.run_id = response.run_id();
  write.event_id = response.first_event_id();
  write.version = response.version();
  write.cluster = cluster;
  write.request_id = request_id;
  write.acked_at_micros = absl::ToUnixMicros(absl::Now());
  absl::MutexLock lock(&mu_);
  ledger_.push_back(std::move(write));
  ++stats_.acked;
}

void Workload::NoteUnexpected(const std::string& what) {
  absl::MutexLock lock(&mu_);
  ++stats_.unexpected;
  stats_.last_unexpected = what;
}

}  // namespace xdc::chaos
