// xdcctl commands for federation membership and migration backfill:
//
//   cluster list | cluster add | cluster remove
//   namespace add-cluster | namespace remove-cluster
//   migration start | migration status | migration abort
//
// xdcctl_main.cc parses the command line and dispatches here; see its usage text.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "replicator/http_client.h"

namespace xdc {

// The parsed command line: positional words (the command first) and --flags (last value wins).
struct CtlCommand {
  const std::vector<std::string>& positional;
  const std::map<std::string, std::vector<std::string>>& flags;
  bool json = false;
};

// Exit status as xdcctl's: 0 success, 1 failed, 2 usage error (the message says what is wrong).
[[nodiscard]] int RunClusterCommand(HttpClient& client, const CtlCommand& command);
[[nodiscard]] int RunNamespaceMembersCommand(HttpClient& client, const CtlCommand& command);
[[nodiscard]] int RunBackfillCommand(HttpClient& client, const CtlCommand& command);

// Whether `verb` of `xdcctl migration VERB` is one of RunBackfillCommand's.
[[nodiscard]] bool IsBackfillVerb(const std::string& verb);
// Whether `verb` of `xdcctl namespace VERB` is one of RunNamespaceMembersCommand's.
[[nodiscard]] bool IsNamespaceMembersVerb(const std::string& verb);

}  // namespace xdc
