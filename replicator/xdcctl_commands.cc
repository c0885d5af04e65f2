#include "replicator/xdcctl_commands.h"

#include "absl/strings/str_cat.h"

namespace xdc {
namespace {

constexpr const char* kHeader =
    R"(usage: xdcctl [--address HOST:PORT] [--token TOKEN] [--json] COMMAND [FLAGS]

Talks to one xdcd over its HTTP/JSON API. The address defaults to $XDC_ADDRESS, else 127.0.0.1:7233.
--token is the daemon's API token (api.bearer_token[_file] in its config), which commands that
change something need when the daemon has one; it defaults to $XDC_API_TOKEN (preferable: a
flag is visible to other users in ps). It is sent on every request to --address.
--json prints the server's JSON response instead of the human-readable form.
A flag the command does not take, a flag without its value or an argument too many is refused
with the command's usage (exit 2): nothing is sent.

Commands:
)";

constexpr const char* kFooter = R"(
Event TYPEs are EventType names from protocol/xdc.proto, e.g. WORKFLOW_EXECUTION_STARTED,
ACTIVITY_TASK_SCHEDULED, TIMER_STARTED, WORKFLOW_EXECUTION_COMPLETED (case-insensitive).
Exit status: 0 success, 1 the operation failed, 2 usage error.
)";

constexpr const char* kMigrationHeader = R"(
Migration commands (docs/migration.md, runbooks/migration.md). The --token is sent to both
clusters; --request-timeout SECONDS (30) bounds each request to them.
)";

constexpr const char* kMigrationFooter =
    R"(Migration exit status: 0 identical / done, 1 error (some shard or run could not be compared, or
the handover did not complete), 2 usage, 3 verify found differences, 4 cutover or rollback
refused (a precondition does not hold; nothing was changed).
)";

FlagSpec Switch(std::string name, std::string help) {
  return {std::move(name), FlagArity::kNone, "", std::move(help)};
}
FlagSpec Value(std::string name, std::string value_name, std::string help) {
  return {std::move(name), FlagArity::kOne, std::move(value_name), std::move(help)};
}

FlagSpec Namespace() { return Value("namespace", "NS", "the namespace"); }
FlagSpec WorkflowId() { return Value("workflow-id", "WF", "the workflow id"); }
FlagSpec RunId() { return Value("run-id", "RUN", "the run (default: the current one)"); }
FlagSpec RequestId() {
  return Value("request-id", "ID",
               "makes the write idempotent: a retry with the same ID returns the first outcome");
}
FlagSpec NoWait() {
  return Switch("no-wait", "print the record at once instead of waiting for the outcome");
}

// The commands of the first part of --help (one xdcd at a time).
std::vector<CommandSpec> MainCommands() {
  return {
      {{"namespace", "register"},
       false,
       1,
       {Value("clusters", "A,B", "the member clusters"),
        Value("active", "A", "the cluster active first")},
       "  namespace register NAME --clusters A,B --active A   register a namespace (on a member "
       "cluster)\n"},
      {{"namespace", "list"},
       false,
       0,
       {},
       "  namespace list                                      list namespaces known to this "
       "cluster\n"},
      {{"namespace", "get"},
       false,
       1,
       {},
       "  namespace get NAME                                  show one namespace record\n"},
      {{"namespace", "describe"},
       false,
       1,
       {},
       R"(  namespace describe NAME                             the record (and when and from which cluster
                                                      this cluster learned it), what a handover
                                                      waits for, and the failover history with
                                                      each RPO and RTO
)"},
      {{"namespace", "history"},
       false,
       1,
       {},
       "  namespace history NAME                              the failover history alone\n"},
      {{"namespace", "failover"},
       false,
       1,
       {Value("to", "CLUSTER", "the cluster to activate"),
        Value("timeout", "D", "graceful: the handover's deadline, e.g. 30s, 500ms, 2m"), NoWait(),
        Switch("force", "forced failover: CLUSTER activates at once (send it to CLUSTER)")},
       R"(  namespace failover NAME --to CLUSTER [--timeout D] [--no-wait]
                                                      graceful handover: send it to the active
                                                      cluster; waits for the target's decision
  namespace failover NAME --to CLUSTER --force        forced failover: send it to CLUSTER, which
                                                      activates at once
)"},
      {{"namespace", "cancel"},
       false,
       1,
       {Value("reason", "TEXT", "recorded in the failover history"), NoWait()},
       "  namespace cancel NAME [--reason TEXT] [--no-wait]   cancel a handover (on its source or "
       "target)\n"},
      {{"namespace", "add-cluster"},
       false,
       1,
       {Value("cluster", "C", "the member to add")},
       "  namespace add-cluster NAME --cluster C              add a member cluster (on the active "
       "cluster)\n"},
      {{"namespace", "remove-cluster"},
       false,
       1,
       {Value("cluster", "C", "the member to remove")},
       "  namespace remove-cluster NAME --cluster C           remove one; it stops applying the "
       "namespace\n"},
      {{"cluster", "list"},
       false,
       0,
       {},
       "  cluster list                                        the federation's clusters, as this "
       "one sees it\n"},
      {{"cluster", "add"},
       false,
       1,
       {Value("from", "HOST:PORT", "the new cluster's API: it describes itself"),
        Value("initial-failover-version", "V", "without --from: the new cluster's"),
        Value("failover-version-increment", "N", "without --from: the federation's"),
        Value("shard-count", "S", "without --from: the federation's")},
       R"(  cluster add --from HOST:PORT                        add the new cluster listening there to this
                                                      cluster's federation (run on every cluster)
  cluster add NAME --initial-failover-version V --failover-version-increment N --shard-count S
)"},
      {{"cluster", "remove"},
       false,
       1,
       {},
       R"(  cluster remove NAME                                 remove a cluster added online (no namespace
                                                      may list it)
)"},
      {{"migration", "start"},
       false,
       0,
       {Namespace(), Value("to", "C", "the new member to backfill"),
        Value("target-address", "HOST:PORT", "the target's API (checked to list itself a member)"),
        Value("rate", "N", "workflow runs per second")},
       R"(  migration start --namespace NS --to C --target-address HOST:PORT [--rate N]
                                                      backfill NS's existing histories to C (send
                                                      it to the active cluster); N runs/s
)"},
      {{"migration", "status"},
       false,
       0,
       {Namespace()},
       "  migration status --namespace NS                     backfill progress: done/total, rate, "
       "ETA\n"},
      {{"migration", "abort"},
       false,
       0,
       {Namespace()},
       "  migration abort --namespace NS                      stop the backfill (start resumes "
       "it)\n"},
      {{"append"},
       false,
       0,
       {Namespace(),
        WorkflowId(),
        RunId(),
        Value("expected-next-event-id", "N", "the run's next event id (1 starts a new run)"),
        {"event", FlagArity::kRepeated, "TYPE[=ATTRS]", "an event to append, once per event"},
        RequestId()},
       R"(  append --namespace NS --workflow-id WF --expected-next-event-id N --event TYPE[=ATTRS] ...
         [--run-id RUN] [--request-id ID]             append events (N=1 starts a new run)
)"},
      {{"signal"},
       false,
       0,
       {Namespace(), WorkflowId(), RunId(), Value("name", "SIGNAL", "the signal's name"),
        Value("input", "TEXT", "the signal's input"), RequestId()},
       "  signal --namespace NS --workflow-id WF --name SIGNAL [--input TEXT] [--run-id RUN]\n"
       "         [--request-id ID]                    a retry with the same ID writes nothing\n"},
      {{"history"},
       false,
       0,
       {Namespace(), WorkflowId(), RunId(),
        Value("branch", "N",
              "show branch N's events (an index from the branch list; default: the current one)"),
        Switch("branches", "list the run's branches (items, current, shared prefix), no events")},
       R"(  history --namespace NS --workflow-id WF [--run-id RUN] [--branch N | --branches]
                                                      the run's branches, then the events of the
                                                      current one (of branch N with --branch);
                                                      --branches lists the branches alone
)"},
      {{"digests"},
       false,
       0,
       {Namespace()},
       "  digests --namespace NS                              per-workflow digests of the current "
       "branches\n"},
      {{"status"},
       false,
       0,
       {},
       R"(  status                                              per-shard publish and apply progress, lag;
                                                      runs still reapply_pending per namespace
)"},
      {{"dlq", "list"},
       true,
       0,
       {Value("limit", "N", "list at most N entries")},
       "  dlq [list] [--limit N]                              the DLQ: parked replication tasks\n"},
      {{"dlq", "retry"},
       false,
       kAnyOperands,
       {Switch("all", "every entry")},
       R"(  dlq retry (--all | SEQUENCE...)                     apply entries now if they can be; gaps go
                                                      back to waiting for a resend
)"},
      {{"dlq", "purge"},
       false,
       kAnyOperands,
       {Switch("all", "every entry")},
       "  dlq purge (--all | SEQUENCE...)                     delete entries (they are not "
       "applied)\n"},
      {{"missing-tasks", "acknowledge"},
       false,
       0,
       {Value("peer", "CLUSTER", "the cluster whose task ids are missing here"),
        Value("shards", "N,N,...", "only these shards (default: every shard)")},
       R"(  missing-tasks acknowledge --peer CLUSTER [--shards N,N,...]
                                                      declare the task ids of CLUSTER missing
                                                      here lost for good, once compare shows
                                                      nothing differs: a handover here no
                                                      longer waits for them (all shards if none)
)"},
      {{"startup-check", "skip"},
       false,
       0,
       {Value("reason", "TEXT", "why this cluster may write without hearing its peers")},
       R"(  startup-check skip --reason TEXT                  let a restarted cluster write before
                                                      every peer answered its startup probe
                                                      (docs/control-plane.md#startup-check)
)"},
      {{"compare"},
       false,
       0,
       {Namespace(), Value("peer", "HOST:PORT", "the other cluster's API"),
        Value("wait", "SECONDS", "compare again until identical or this much time passed")},
       R"(  compare --namespace NS --peer HOST:PORT [--wait SECONDS]
                                                      compare every run's content (all branches)
                                                      with another cluster; exit 1 if they differ
                                                      (after waiting, if asked)
)"},
      {{"load"},
       false,
       0,
       {Namespace(), Value("workflows", "N", "workflows to write (1000)"),
        Value("events-per-workflow", "K", "events per workflow, at least 2 (5)"),
        Value("signals", "S", "signals per workflow (1)"),
        Value("concurrency", "C", "client connections (8)"),
        Value("prefix", "P", "workflow id prefix (wf)")},
       R"(  load --namespace NS [--workflows N] [--events-per-workflow K] [--signals S]
       [--concurrency C] [--prefix P]                 write a workload; exit 1 on any error
)"},
      {{"fault", "list"},
       true,
       0,
       {},
       R"(  fault list                                          the armed fault points (tests and chaos
                                                      runs only: xdcd must run with
                                                      XDC_ENABLE_FAULT_POINTS=1)
)"},
      {{"fault", "arm"},
       false,
       kAnyOperands,
       {},
       R"(  fault arm NAME...                                   arm fault points, e.g. store.write_error,
                                                      kafka.duplicate_delivery, apply.hold.PEER
)"},
      {{"fault", "disarm"},
       false,
       kAnyOperands,
       {},
       "  fault disarm NAME...                                disarm them; both print the armed "
       "list\n"},
  };
}

// The flags of migration verify, cutover and rollback besides their own.
std::vector<FlagSpec> MigrationFlags(std::vector<FlagSpec> own) {
  std::vector<FlagSpec> flags = {
      Namespace(), Value("source", "ADDR", "the source cluster's API"),
      Value("target", "ADDR", "the target cluster's API"),
      Value("request-timeout", "SECONDS", "bounds each request to the clusters (30)")};
  flags.insert(flags.end(), own.begin(), own.end());
  return flags;
}

std::vector<FlagSpec> HandoverFlags() {
  return {Value("max-lag-seconds", "S", "refuse while the new active lags more than S (5)"),
          Value("timeout", "D", "the handover's deadline, e.g. 30s"),
          Value("verify-wait", "SECONDS", "verify again until clean for this long (10)")};
}

// The commands of the migration part of --help (two clusters at once).
std::vector<CommandSpec> MigrationCommands() {
  std::vector<FlagSpec> rollback = HandoverFlags();
  rollback.push_back(Switch("skip-verify", "hand back without verifying first"));
  return {
      {{"migration", "verify"},
       false,
       0,
       MigrationFlags({Switch("repair", "have the source resend the differing runs"),
                       Value("wait", "SECONDS", "verify again until identical for this long"),
                       Value("repair-timeout", "SECONDS", "wait this long for repairs (60)")}),
       R"(  migration verify --namespace NS --source ADDR --target ADDR [--repair] [--wait SECONDS]
                    [--repair-timeout SECONDS]
                                compare every run's content (all branches, all events, status)
                                on the two clusters, shard by shard; list each differing run and
                                why; --repair has the source resend the differing runs and waits
                                until the target matches; --wait re-verifies until identical
)"},
      {{"migration", "cutover"},
       false,
       0,
       MigrationFlags(HandoverFlags()),
       R"(  migration cutover --namespace NS --source ADDR --target ADDR [--max-lag-seconds S]
                    [--timeout D] [--verify-wait SECONDS]
                                graceful handover source -> target, refused unless verify is
                                clean and the target's lag from the source is under S (5)
)"},
      {{"migration", "rollback"},
       false,
       0,
       MigrationFlags(rollback),
       R"(  migration rollback --namespace NS --source ADDR --target ADDR [--max-lag-seconds S]
                    [--timeout D] [--verify-wait SECONDS] [--skip-verify]
                                graceful handover back, target -> source, with the same checks
)"},
  };
}

const std::vector<CommandSpec>& Main() {
  static const std::vector<CommandSpec>* commands = new std::vector<CommandSpec>(MainCommands());
  return *commands;
}

const std::vector<CommandSpec>& Migration() {
  static const std::vector<CommandSpec>* commands =
      new std::vector<CommandSpec>(MigrationCommands());
  return *commands;
}

}  // namespace

const std::vector<FlagSpec>& XdcctlGlobalFlags() {
  static const std::vector<FlagSpec>* flags = new std::vector<FlagSpec>{
      Value("address", "HOST:PORT", "the xdcd to talk to ($XDC_ADDRESS, else 127.0.0.1:7233)"),
      Value("token", "TOKEN", "the daemon's API token ($XDC_API_TOKEN)"),
      Switch("json", "print the server's JSON response")};
  return *flags;
}

const std::vector<CommandSpec>& XdcctlCommands() {
  static const std::vector<CommandSpec>* commands = [] {
    auto* all = new std::vector<CommandSpec>(Main());
    all->insert(all->end(), Migration().begin(), Migration().end());
    return all;
  }();
  return *commands;
}

std::string XdcctlUsage() {
  std::string text = kHeader;
  for (const CommandSpec& command : Main()) text += command.usage;
  return text + kFooter;
}

std::string XdcctlMigrationUsage() {
  std::string text = kMigrationHeader;
  for (const CommandSpec& command : Migration()) text += command.usage;
  return text + kMigrationFooter;
}

std::string XdcctlCommandUsage(const CommandSpec& command) {
  return absl::StrCat(command.usage, "flags of '", command.Name(), "':\n",
                      command.flags.empty() ? "  (none)\n" : FlagsHelp(command.flags),
                      "global flags:\n", FlagsHelp(XdcctlGlobalFlags()),
                      "(xdcctl --help lists every command)\n");
}

}  // namespace xdc
