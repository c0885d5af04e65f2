// What the xdcctl commands share: the parsed arguments, error and JSON output, query strings and
// waiting for a graceful handover's outcome. Used by xdcctl_main.cc and xdcctl_migration.cc.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"

namespace xdc {

// Exit statuses every command shares (xdcctl --help lists them with the migration ones).
inline constexpr int kExitFailed = 1;  // the operation failed
inline constexpr int kExitUsage = 2;   // bad command line

// How often a handover's source is polled, and how long past its deadline a handover may take to
// be answered (the target decides the cancel).
inline constexpr int kHandoverPollMs = 100;
inline constexpr absl::Duration kHandoverAnswerGrace = absl::Seconds(10);

// A parsed command line (ParseCommandLine in replicator/cli_flags.h, against the command table of
// replicator/xdcctl_commands.h): only flags the command declares are here.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> flags;

  bool Has(const std::string& name) const { return flags.contains(name); }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = flags.find(name);
    return it == flags.end() || it->second.empty() ? fallback : it->second.back();
  }
};

// Prints `status` (and what to do about it) to stderr; returns kExitFailed.
int Fail(const absl::Status& status);

void PrintJson(const google::protobuf::Message& message);

// "?k=v&..." with the values percent-encoded; "" for no parameters.
[[nodiscard]] std::string Query(const std::map<std::string, std::string>& params);

// Polls the source until the handover is decided. Exit 0 when it ended as asked (completed, or
// cancelled when `cancelling`); 1, saying what happened, otherwise or when the outcome is still
// unknown after `wait`.
int WaitForHandover(HttpClient& client, const std::string& name, NamespaceRecord record,
                    absl::Duration wait, bool cancelling, bool json);

}  // namespace xdc
