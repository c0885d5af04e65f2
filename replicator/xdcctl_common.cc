#include "replicator/xdcctl_common.h"

#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "replicator/api_errors.h"

namespace xdc {
int Fail(const absl::Status& status) {
  std::fprintf(stderr, "xdcctl: %s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  if (auto active = status.GetPayload(kActiveClusterPayload)) {
    std::fprintf(stderr, "xdcctl: the namespace is active on cluster '%s'\n",
                 std::string(*active).c_str());
  }
  if (IsRetryable(status)) std::fprintf(stderr, "xdcctl: this error is retryable\n");
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    std::fprintf(stderr,
                 "xdcctl: pass the daemon's API token (api.bearer_token[_file] in its config) "
                 "with --token TOKEN or the XDC_API_TOKEN environment variable\n");
  }
  return kExitFailed;
}

void PrintJson(const google::protobuf::Message& message) {
  absl::StatusOr<std::string> json = ToJson(message);
  std::printf("%s\n", json.ok() ? json->c_str() : "{}");
}

std::string Query(const std::map<std::string, std::string>& params) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : params) {
    std::string encoded;
    for (unsigned char c : value) {
      if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        encoded.push_back(static_cast<char>(c));
      } else {
        encoded += absl::StrFormat("%%%02X", c);
      }
    }
    parts.push_back(key + "=" + encoded);
  }
  return parts.empty() ? "" : "?" + absl::StrJoin(parts, "&");
}

int WaitForHandover(HttpClient& client, const std::string& name, NamespaceRecord record,
                    absl::Duration wait, bool cancelling, bool json) {
  const std::string source = record.active_cluster();
  const std::string target = record.handover().target_cluster();
  const absl::Time give_up = absl::Now() + wait;
  while (record.state() == NAMESPACE_STATE_HANDOVER && record.active_cluster() == source &&
         absl::Now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kHandoverPollMs));
    if (absl::Status s = client.Call("GET", "/v1/namespaces/" + name, nullptr, record); !s.ok()) {
      return Fail(s);
    }
  }
  if (json) PrintJson(record);
  // The entry the decision added: graceful (completed) or cancelled (its reason).
  const FailoverEvent* last = record.failover_history_size() > 0
                                  ? &record.failover_history(record.failover_history_size() - 1)
                                  : nullptr;
  if (record.active_cluster() != source) {
    if (!json) {
      std::printf("handover complete: %s is active on %s at failover version %lld", name.c_str(),
                  record.active_cluster().c_str(),
                  static_cast<long long>(record.failover_version()));
      if (last != nullptr && last->kind() == FAILOVER_KIND_GRACEFUL) {
        std::printf("; writes were refused for %.3f s",
                    static_cast<double>(last->writes_refused_micros()) / 1e6);
      }
      std::printf("%s\n", cancelling ? " (the target had activated before the cancel)" : "");
    }
    return cancelling ? kExitFailed : 0;
  }
  if (record.state() == NAMESPACE_STATE_ACTIVE) {
    if (!json) {
      std::printf("handover cancelled by %s (%s): %s is active on %s again\n", target.c_str(),
                  last != nullptr ? last->reason().c_str() : "no reason given", name.c_str(),
                  source.c_str());
    }
    return cancelling ? 0 : kExitFailed;
  }
  std::fprintf(stderr,
               "xdcctl: the outcome of the handover of %s is not known yet: %s is still in "
               "HANDOVER (refusing writes)%s and %s has not answered.\n"
               "xdcctl: nothing was guessed. Check %s (xdcctl --address <%s> namespace describe "
               "%s); cancel with 'xdcctl namespace cancel %s', or, if %s is gone, force a failover "
               "(see runbooks/forced-failover.md).\n",
               name.c_str(), source.c_str(),
               record.handover().cancel_requested() ? ", a cancel was requested," : "",
               target.c_str(), target.c_str(), target.c_str(), name.c_str(), name.c_str(),
               target.c_str());
  return kExitFailed;
}

}  // namespace xdc
