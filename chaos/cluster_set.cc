#include "chaos/cluster_set.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "replicator/http_client.h"

namespace xdc::chaos {
namespace {

// How xdcd announces its HTTP address, then readiness (replicator/xdcd_main.cc).
std::string ListeningPattern(const std::string& name) {
  return absl::StrCat("^xdcd: cluster ", name, " listening on http://(\\S+)$");
}
constexpr char kReadyPattern[] = "^xdcd: ready$";
// Spawned through env(1) so the daemon alone gets the variable, not this process.
constexpr char kEnvBinary[] = "/usr/bin/env";
constexpr char kEnableFaultPoints[] = "XDC_ENABLE_FAULT_POINTS=1";

std::chrono::milliseconds ToChrono(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ClusterSet>> ClusterSet::Create(ClusterSetOptions options) {
  if (options.clusters.size() < 2) {
    return absl::InvalidArgumentError("a cluster set needs at least two clusters");
  }
  if (options.work_dir.empty() || options.xdcd_binary.empty() || options.bootstrap.empty()) {
    return absl::InvalidArgumentError("a cluster set needs work_dir, xdcd_binary and bootstrap");
  }
  if (static_cast<int64_t>(options.clusters.size()) >= options.failover_version_increment) {
    return absl::InvalidArgumentError("more clusters than failover versions per increment");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.work_dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("creating ", options.work_dir, ": ", ec.message()));
  }
  std::unique_ptr<ClusterSet> set(new ClusterSet(std::move(options)));
  const ClusterSetOptions& o = set->options_;
  set->members_.resize(o.clusters.size());
  for (size_t i = 0; i < o.clusters.size(); ++i) {
    Member& member = set->members_[i];
    member.name = o.clusters[i];
    member.config_path = absl::StrCat(o.work_dir, "/", member.name, ".conf");
    member.log_path = absl::StrCat(o.work_dir, "/", member.name, ".log");
    std::ofstream config(member.config_path);
    config << "cluster_name: \"" << member.name << "\"\n"
           << "failover_version_increment: " << o.failover_version_increment << "\n"
           << "shard_count: " << o.shard_count << "\n";
    for (size_t j = 0; j < o.clusters.size(); ++j) {
      config << "clusters { name: \"" << o.clusters[j] << "\" initial_failover_version: " << j + 1
             << " }\n";
    }
    config << "data_dir: \"" << o.work_dir << "/" << member.name << "\"\n"
           << "http_listen_address: \"127.0.0.1:0\"\n"
           << "kafka { bootstrap_servers: \"" << o.bootstrap << "\"";
    if (!o.topic_prefix.empty()) config << " topic_prefix: \"" << o.topic_prefix << "\"";
    config << " }\n";
    config.close();
    if (!config) {
      return absl::InternalError(absl::StrCat("writing ", member.config_path));
    }
  }
  return set;
}

ClusterSet::~ClusterSet() {
  for (Member& member : members_) {
    if (member.process != nullptr && member.paused) member.process->Kill(SIGCONT).IgnoreError();
  }
}

absl::StatusOr<ClusterSet::Member*> ClusterSet::Find(const std::string& name) {
  for (Member& member : members_) {
    if (member.name == name) return &member;
  }
  return absl::NotFoundError(absl::StrCat("no cluster named '", name, "'"));
}

absl::StatusOr<const ClusterSet::Member*> ClusterSet::Find(const std::string& name) const {
  for (const Member& member : members_) {
    if (member.name == name) return &member;
  }
  return absl::NotFoundError(absl::StrCat("no cluster named '", name, "'"));
}

void ClusterSet::SetAddress(const std::string& name, std::string address) {
  absl::MutexLock lock(&mu_);
  addresses_[name] = std::move(address);
}

std::string ClusterSet::address(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = addresses_.find(name);
  return it == addresses_.end() ? std::string() : it->second;
}

pid_t ClusterSet::pid(const std::string& name) const {
  absl::StatusOr<const Member*> member = Find(name);
  if (!member.ok() || (*member)->process == nullptr) return 0;
  return (*member)->process->pid();
}

absl::Status ClusterSet::StartAll() {
  for (const std::string& name : options_.clusters) {
    if (absl::Status s = Start(name); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ClusterSet::Start(const std::string& name) {
  absl::StatusOr<Member*> found = Find(name);
  if (!found.ok()) return found.status();
  Member& member = **found;
  if (member.process != nullptr && member.process->IsRunning()) {
    return absl::FailedPreconditionError(absl::StrCat("xdcd ", name, " is already running"));
  }
  std::vector<std::string> argv;
  if (options_.enable_fault_points) argv = {kEnvBinary, kEnableFaultPoints};
  argv.insert(argv.end(), {options_.xdcd_binary, "--config", member.config_path});
  absl::StatusOr<std::unique_ptr<ChildProcess>> process =
      ChildProcess::Spawn(argv, member.log_path);
  if (!process.ok()) return process.status();
  member.process = *std::move(process);
  member.paused = false;
  member.killed = false;
  member.exit_description.clear();
  absl::StatusOr<std::vector<std::string>> listening =
      member.process->WaitForMatch(ListeningPattern(name), kStartTimeout);
  if (!listening.ok()) {
    return absl::Status(
        listening.status().code(),
        absl::StrCat("xdcd ", name, " did not start: ", listening.status().message()));
  }
  absl::StatusOr<std::string> ready = member.process->WaitForLine(kReadyPattern, kStartTimeout);
  if (!ready.ok()) {
    return absl::Status(
        ready.status().code(),
        absl::StrCat("xdcd ", name, " did not get ready: ", ready.status().message()));
  }
  SetAddress(name, (*listening)[1]);
  if (!member.armed.empty()) {
    // A new process starts with nothing armed: the faults still in force are armed again.
    const std::vector<std::string> rearm(member.armed.begin(), member.armed.end());
    absl::StatusOr<std::vector<std::string>> armed = SetFaultPoints(name, rearm, {});
    if (!armed.ok()) return armed.status();
  }
  return absl::OkStatus();
}

absl::Status ClusterSet::Kill(const std::string& name) {
  absl::StatusOr<Member*> found = Find(name);
  if (!found.ok()) return found.status();
  Member& member = **found;
  if (member.process == nullptr || !member.process->IsRunning()) {
    return absl::FailedPreconditionError(absl::StrCat("xdcd ", name, " is not running"));
  }
  SetAddress(name, "");
  member.killed = true;
  if (absl::Status s = member.process->Kill(SIGKILL); !s.ok()) return s;
  absl::StatusOr<ExitStatus> exit = member.process->Wait(kReapTimeout);
  member.paused = false;
  return exit.ok() ? absl::OkStatus() : exit.status();
}

absl::Status ClusterSet::Pause(const std::string& name) {
  absl::StatusOr<Member*> found = Find(name);
  if (!found.ok()) return found.status();
  Member& member = **found;
  if (member.process == nullptr || !member.process->IsRunning()) {
    return absl::FailedPreconditionError(absl::StrCat("xdcd ", name, " is not running"));
  }
  if (absl::Status s = member.process->Kill(SIGSTOP); !s.ok()) return s;
  member.paused = true;
  return absl::OkStatus();
}

absl::Status ClusterSet::Resume(const std::string& name) {
  absl::StatusOr<Member*> found = Find(name);
  if (!found.ok()) return found.status();
  Member& member = **found;
  if (member.process == nullptr || !member.process->IsRunning()) {
    return absl::FailedPreconditionError(absl::StrCat("xdcd ", name, " is not running"));
  }
  if (absl::Status s = member.process->Kill(SIGCONT); !s.ok()) return s;
  member.paused = false;
  return absl::OkStatus();
}

absl::Status ClusterSet::StopAll() {
  absl::Status first;
  for (Member& member : members_) {
    if (member.process == nullptr || !member.process->IsRunning()) continue;
    SetAddress(member.name, "");
    member.killed = true;
    member.process->Kill(SIGCONT).IgnoreError();
    member.paused = false;
    absl::StatusOr<ExitStatus> exit = member.process->Terminate(kStopGrace);
    if (first.ok() && (!exit.ok() || !exit->exited_cleanly())) {
      first = absl::InternalError(
          absl::StrCat("xdcd ", member.name, " did not stop cleanly on SIGTERM: ",
                       exit.ok() ? exit->ToString() : exit.status().ToString()));
    }
  }
  return first;
}

bool ClusterSet::running(const std::string& name) {
  absl::StatusOr<Member*> found = Find(name);
  if (!found.ok()) return false;
  Member& member = **found;
  if (member.process == nullptr) return false;
  if (member.process->IsRunning()) return true;
  SetAddress(name, "");
  if (!member.killed && member.exit_description.empty()) {
    absl::StatusOr<ExitStatus> exit = member.process->Wait(absl::ZeroDuration());
    member.exit_description = exit.ok() ? exit->ToString() : exit.status().ToString();
  }
  return false;
}

bool ClusterSet::paused(const std::string& name) const {
  absl::StatusOr<const Member*> found = Find(name);
  return found.ok() && (*found)->paused;
}

std::string ClusterSet::unexpected_exit(const std::string& name) {
  if (running(name)) return "";
  absl::StatusOr<Member*> found = Find(name);
  return found.ok() ? (*found)->exit_description : "";
}

std::string ClusterSet::log_path(const std::string& name) const {
  absl::StatusOr<const Member*> found = Find(name);
  return found.ok() ? (*found)->log_path : "";
}

std::string ClusterSet::LogTail(const std::string& name, int max_lines) const {
  absl::StatusOr<const Member*> found = Find(name);
  if (!found.ok() || (*found)->process == nullptr) return "";
  return (*found)->process->LogTail(max_lines);
}

absl::Status ClusterSet::Call(const std::string& name, const std::string& method,
                              const std::string& target, const google::protobuf::Message* request,
                              google::protobuf::Message& response) const {
  const std::string where = address(name);
  if (where.empty()) {
    return absl::UnavailableError(absl::StrCat("xdcd ", name, " is not running"));
  }
  HttpClient client(where, ToChrono(kControlRequestTimeout));
  absl::Status status = client.Call(method, target, request, response);
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat(method, " ", target, " on ", name, ": ", status.message()));
  }
  return status;
}

absl::StatusOr<std::vector<std::string>> ClusterSet::SetFaultPoints(
    const std::string& name, const std::vector<std::string>& arm,
    const std::vector<std::string>& disarm) {
  absl::StatusOr<Member*> found = Find(name);
  if (!found.ok()) return found.status();
  Member& member = **found;
  // The record changes first: a cluster that is down gets the points when it restarts.
  for (const std::string& point : arm) member.armed.insert(point);
  for (const std::string& point : disarm) member.armed.erase(point);
  FaultPointsRequest request;
  for (const std::string& point : arm) request.add_arm(point);
  for (const std::string& point : disarm) request.add_disarm(point);
  FaultPointsResponse response;
  if (absl::Status s = Call(name, "POST", "/v1/fault-points", &request, response); !s.ok()) {
    return s;
  }
  return std::vector<std::string>(response.armed().begin(), response.armed().end());
}

std::set<std::string> ClusterSet::armed(const std::string& name) const {
  absl::StatusOr<const Member*> found = Find(name);
  return found.ok() ? (*found)->armed : std::set<std::string>();
}

absl::StatusOr<StatusResponse> ClusterSet::Status(const std::string& name) const {
  StatusResponse response;
  if (absl::Status s = Call(name, "GET", "/v1/status", nullptr, response); !s.ok()) return s;
  return response;
}

absl::StatusOr<NamespaceRecord> ClusterSet::Namespace(const std::string& name,
                                                      const std::string& ns) const {
  NamespaceRecord record;
  if (absl::Status s = Call(name, "GET", absl::StrCat("/v1/namespaces/", ns), nullptr, record);
      !s.ok()) {
    return s;
  }
  return record;
}

absl::StatusOr<NamespaceRecord> ClusterSet::NewestNamespace(const std::string& ns) const {
  std::optional<NamespaceRecord> newest;
  std::vector<std::string> errors;
  for (const Member& member : members_) {
    if (member.paused) continue;  // it would not answer
    absl::StatusOr<NamespaceRecord> record = Namespace(member.name, ns);
    if (!record.ok()) {
      errors.push_back(std::string(record.status().message()));
      continue;
    }
    if (!newest.has_value() ||
        std::make_tuple(record->failover_version(), record->state_sequence()) >
            std::make_tuple(newest->failover_version(), newest->state_sequence())) {
      newest = *std::move(record);
    }
  }
  if (!newest.has_value()) {
    return absl::UnavailableError(
        absl::StrCat("no cluster answered for namespace ", ns, ": ", absl::StrJoin(errors, "; ")));
  }
  return *newest;
}

absl::Status ClusterSet::RegisterNamespace(const std::string& ns, const std::string& active,
                                           absl::Duration timeout) {
  RegisterNamespaceRequest request;
  request.set_name(ns);
  for (const std::string& name : options_.clusters) request.add_clusters(name);
  request.set_active_cluster(active);
  NamespaceRecord record;
  if (absl::Status s = Call(active, "POST", "/v1/namespaces", &request, record); !s.ok()) {
    return s;
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (const std::string& name : options_.clusters) {
    for (;;) {
      absl::StatusOr<NamespaceRecord> known = Namespace(name, ns);
      if (known.ok() && known->active_cluster() == active) break;
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("cluster ", name, " did not learn namespace ", ns, " within ",
                         absl::FormatDuration(timeout), ": ",
                         known.ok() ? known->ShortDebugString() : known.status().ToString()));
      }
      absl::SleepFor(kPollInterval);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<NamespaceRecord> ClusterSet::ForceFailover(const std::string& ns,
                                                          const std::string& target) {
  FailoverRequest request;
  request.set_target_cluster(target);
  request.set_force(true);
  NamespaceRecord record;
  if (absl::Status s =
          Call(target, "POST", absl::StrCat("/v1/namespaces/", ns, "/failover"), &request, record);
      !s.ok()) {
    return s;
  }
  return record;
}

absl::StatusOr<NamespaceRecord> ClusterSet::BeginHandover(const std::string& ns,
                                                          const std::string& source,
                                                          const std::string& target,
                                                          absl::Duration timeout) {
  FailoverRequest request;
  request.set_target_cluster(target);
  request.set_timeout_ms(absl::ToInt64Milliseconds(timeout));
  NamespaceRecord record;
  if (absl::Status s =
          Call(source, "POST", absl::StrCat("/v1/namespaces/", ns, "/failover"), &request, record);
      !s.ok()) {
    return s;
  }
  return record;
}

absl::StatusOr<NamespaceRecord> ClusterSet::CancelHandover(const std::string& ns,
                                                           const std::string& name,
                                                           const std::string& reason) {
  CancelHandoverRequest request;
  request.set_reason(reason);
  NamespaceRecord record;
  if (absl::Status s = Call(name, "POST", absl::StrCat("/v1/namespaces/", ns, "/cancel-handover"),
                            &request, record);
      !s.ok()) {
    return s;
  }
  return record;
}

}  // namespace xdc::chaos
