// The command-line surface: xdcd refuses bad configs with a clear message and exit code 2, and
// xdcctl performs every API operation against a real xdcd process.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "chaos/process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"
#include "replicator/xdcctl_commands.h"
#include "tests/run_command.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kStartTimeout = absl::Seconds(30);

std::string Bin(const std::string& name) { return std::string(XDC_BIN_DIR) + "/" + name; }

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrFormat("xdc-cli-%d-%s", getpid(),
                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteConfig(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::string ValidConfig() const {
    return absl::StrFormat(R"(cluster_name: "east"
failover_version_increment: 100
shard_count: 4
clusters { name: "east" initial_failover_version: 1 }
clusters { name: "west" initial_failover_version: 2 }
data_dir: "%s"
http_listen_address: "127.0.0.1:0"
)",
                           (dir_ / "east").string());
  }

  std::filesystem::path dir_;
};

TEST_F(CliTest, XdcdRefusesBadConfigsWithExitCode2AndTheReason) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const Case cases[] = {
      {"cluster_name: \"east\"\n", "failover_version_increment"},
      {absl::StrReplaceAll(ValidConfig(), {{"cluster_name: \"east\"", "cluster_name: \"north\""}}),
       "'north' is not among clusters"},
      {absl::StrReplaceAll(ValidConfig(),
                           {{"initial_failover_version: 2", "initial_failover_version: 1"}}),
       "initial_failover_version 1 is used by two clusters"},
      {"this is { not text format", "line 1"},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const std::string path = WriteConfig(absl::StrFormat("bad%d.conf", i), cases[i].text);
    CommandResult result = RunCommand(Bin("xdcd") + " --config " + path);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_THAT(result.output, HasSubstr(cases[i].expected));
    EXPECT_THAT(result.output, HasSubstr(path));
  }
  CommandResult missing = RunCommand(Bin("xdcd") + " --config " + (dir_ / "nope.conf").string());
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("cannot read config file"));
}

TEST_F(CliTest, XdcctlDrivesEveryOperation) {
  const std::string config = WriteConfig("east.conf", ValidConfig());
  absl::StatusOr<std::unique_ptr<chaos::ChildProcess>> xdcd =
      chaos::ChildProcess::Spawn({Bin("xdcd"), "--config", config}, (dir_ / "east.log").string());
  ASSERT_TRUE(xdcd.ok()) << xdcd.status();
  absl::StatusOr<std::vector<std::string>> listening =
      (*xdcd)->WaitForMatch("listening on http://(\\S+)$", kStartTimeout);
  ASSERT_TRUE(listening.ok()) << listening.status() << (*xdcd)->LogTail();
  const std::string ctl = Bin("xdcctl") + " --address " + (*listening)[1];

  EXPECT_EQ(RunCommand(Bin("xdcctl") + " --help").exit_code, 0);
  CommandResult usage = RunCommand(ctl + " frobnicate");
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.output, HasSubstr("unknown command 'frobnicate'"));

  CommandResult reg =
      RunCommand(ctl + " namespace register orders --clusters east,west --active east");
  ASSERT_EQ(reg.exit_code, 0) << reg.output;
  EXPECT_THAT(reg.output, HasSubstr("active=east"));
  EXPECT_THAT(RunCommand(ctl + " namespace list").output, HasSubstr("orders"));
  CommandResult get = RunCommand(ctl + " --json namespace get orders");
  NamespaceRecord record;
  ASSERT_TRUE(FromJson(get.output, record).ok()) << get.output;
  EXPECT_EQ(record.active_cluster(), "east");
  EXPECT_EQ(record.failover_version(), 1);

  CommandResult append =
      RunCommand(ctl +
                 " --json append --namespace orders --workflow-id o-1 --run-id r-1"
                 " --expected-next-event-id 1 --event WORKFLOW_EXECUTION_STARTED=hi"
                 " --event activity_task_scheduled");
  AppendResponse appended;
  ASSERT_TRUE(FromJson(append.output, appended).ok()) << append.output;
  EXPECT_EQ(appended.next_event_id(), 3);
  const std::string signal =
      ctl + " signal --namespace orders --workflow-id o-1 --name go --input x --request-id go-1";
  CommandResult signalled = RunCommand(signal);
  EXPECT_EQ(signalled.exit_code, 0);
  EXPECT_THAT(signalled.output, HasSubstr("appended events [3, 4)"));
  CommandResult retried = RunCommand(signal);  // a retry: answered, nothing written
  EXPECT_EQ(retried.exit_code, 0);
  EXPECT_THAT(retried.output,
              HasSubstr("already appended events [3, 4) to run r-1 at version 1 (a retry"));

  CommandResult stale = RunCommand(ctl +
                                   " append --namespace orders --workflow-id o-1 --run-id r-1"
                                   " --expected-next-event-id 2 --event TIMER_STARTED");
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_THAT(stale.output, HasSubstr("has next event id 4"));

  CommandResult history = RunCommand(ctl + " --json history --namespace orders --workflow-id o-1");
  GetHistoryResponse got;
  ASSERT_TRUE(FromJson(history.output, got).ok()) << history.output;
  ASSERT_EQ(got.events_size(), 3);
  EXPECT_EQ(got.events(0).attributes(), "hi");
  EXPECT_EQ(got.events(2).event_type(), WORKFLOW_EXECUTION_SIGNALED);
  EXPECT_THAT(RunCommand(ctl + " history --namespace orders --workflow-id o-1").output,
              HasSubstr("WORKFLOW_EXECUTION_SIGNALED"));

  CommandResult digests = RunCommand(ctl + " digests --namespace orders");
  EXPECT_THAT(digests.output, HasSubstr(got.digest()));
  EXPECT_THAT(RunCommand(ctl + " status").output, HasSubstr("cluster east, 4 shards"));
  CommandResult dlq = RunCommand(ctl + " dlq --limit 5");
  EXPECT_EQ(dlq.exit_code, 0);
  EXPECT_THAT(dlq.output, HasSubstr("0 parked tasks"));
  EXPECT_THAT(RunCommand(ctl + " dlq list").output, HasSubstr("0 parked tasks"));
  CommandResult retry_all = RunCommand(ctl + " dlq retry --all");
  EXPECT_EQ(retry_all.exit_code, 0) << retry_all.output;
  EXPECT_THAT(retry_all.output, HasSubstr("0 entries left in the DLQ"));
  CommandResult purge_missing = RunCommand(ctl + " dlq purge 7");
  EXPECT_EQ(purge_missing.exit_code, 0) << purge_missing.output;
  EXPECT_THAT(purge_missing.output, HasSubstr("#7 not_found"));
  CommandResult purge_nothing = RunCommand(ctl + " dlq purge");
  EXPECT_EQ(purge_nothing.exit_code, 2) << purge_nothing.output;
  EXPECT_THAT(purge_nothing.output, HasSubstr("needs --all or DLQ sequences"));

  // Forced failover is sent to the cluster that activates; a graceful handover to the cluster that
  // is already active, or a cancel with no handover, is refused and says why.
  CommandResult already = RunCommand(ctl + " namespace failover orders --to east --force");
  EXPECT_EQ(already.exit_code, 0) << already.output;
  EXPECT_THAT(already.output, HasSubstr("active=east failover_version=1"));
  CommandResult elsewhere = RunCommand(ctl + " namespace failover orders --to west --force");
  EXPECT_EQ(elsewhere.exit_code, 1) << elsewhere.output;
  EXPECT_THAT(elsewhere.output, HasSubstr("send it to 'west'"));
  CommandResult graceful = RunCommand(ctl + " namespace failover orders --to east");
  EXPECT_EQ(graceful.exit_code, 1) << graceful.output;
  EXPECT_THAT(graceful.output, HasSubstr("namespace 'orders' is already active on 'east'"));
  CommandResult bad_timeout = RunCommand(ctl + " namespace failover orders --to west --timeout x");
  EXPECT_EQ(bad_timeout.exit_code, 2) << bad_timeout.output;
  EXPECT_THAT(bad_timeout.output, HasSubstr("--timeout takes a duration"));
  CommandResult no_handover = RunCommand(ctl + " namespace cancel orders");
  EXPECT_EQ(no_handover.exit_code, 1) << no_handover.output;
  EXPECT_THAT(no_handover.output, HasSubstr("has no handover in progress"));
  CommandResult describe = RunCommand(ctl + " namespace describe orders");
  EXPECT_EQ(describe.exit_code, 0) << describe.output;
  EXPECT_THAT(describe.output,
              HasSubstr("active=east failover_version=1 state=NAMESPACE_STATE_ACTIVE"));
  EXPECT_THAT(describe.output, HasSubstr("no failovers of orders yet"));
  EXPECT_THAT(RunCommand(ctl + " namespace history orders").output,
              HasSubstr("no failovers of orders yet"));

  CommandResult self_compare =
      RunCommand(ctl + " compare --namespace orders --peer " + (*listening)[1]);
  EXPECT_EQ(self_compare.exit_code, 0) << self_compare.output;
  EXPECT_THAT(self_compare.output, HasSubstr("converged: 1 workflows identical"));

  CommandResult load =
      RunCommand(ctl + " load --namespace orders --workflows 20 --signals 1 --concurrency 2");
  EXPECT_EQ(load.exit_code, 0) << load.output;
  EXPECT_THAT(load.output, HasSubstr("wrote 20 workflows, 120 events"));

  CommandResult unknown = RunCommand(ctl + " digests --namespace nope");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.output, HasSubstr("namespace 'nope' is not registered"));

  absl::StatusOr<chaos::ExitStatus> stopped = (*xdcd)->Terminate();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->exited_cleanly()) << stopped->ToString();
}

// Nothing listens on port 1: a command that got past its command line would exit 1 ("cannot
// connect"), so exit 2 with the usage shows the command line itself was refused.
constexpr const char* kNobody = " --address 127.0.0.1:1 ";

void ExpectRefusedCommandLine(const std::string& args, const std::string& problem,
                              const std::string& usage) {
  CommandResult result = RunCommand(Bin("xdcctl") + kNobody + args);
  EXPECT_EQ(result.exit_code, 2) << args << "\n" << result.output;
  EXPECT_THAT(result.output, HasSubstr(problem)) << args;
  EXPECT_THAT(result.output, HasSubstr(usage)) << args;
  EXPECT_THAT(result.output, ::testing::Not(HasSubstr("cannot connect"))) << args;
}

TEST_F(CliTest, XdcctlRefusesAMisspelledFlagInsteadOfActingOnEveryShard) {
  ExpectRefusedCommandLine("missing-tasks acknowledge --peer east --shard 3",
                           "unknown flag --shard for 'missing-tasks acknowledge'",
                           "missing-tasks acknowledge --peer CLUSTER [--shards N,N,...]");
}

TEST_F(CliTest, XdcctlRefusesUnknownFlagsMissingValuesAndStrayArguments) {
  struct Case {
    std::string args;
    std::string problem;
    std::string usage;
  };
  const Case cases[] = {
      {"--adress 127.0.0.1:2 status", "unknown flag --adress", "--address HOST:PORT"},
      {"status --adress 127.0.0.1:2", "unknown flag --adress", "--address HOST:PORT"},
      {"status --peer east", "unknown flag --peer for 'status'", "  status"},
      {"status now", "unexpected argument 'now' for 'status'", "  status"},
      {"namespace list extra", "unexpected argument 'extra' for 'namespace list'",
       "  namespace list"},
      {"namespace get orders extra", "unexpected argument 'extra' for 'namespace get'",
       "  namespace get NAME"},
      {"namespace failover orders --to west --focre", "unknown flag --focre",
       "namespace failover NAME --to CLUSTER"},
      {"namespace failover orders --to", "--to needs a value",
       "namespace failover NAME --to CLUSTER"},
      {"missing-tasks acknowledge --peer", "--peer needs a value",
       "missing-tasks acknowledge --peer CLUSTER"},
      {"missing-tasks acknowledge --peer east --shards", "--shards needs a value",
       "missing-tasks acknowledge --peer CLUSTER"},
      {"dlq --limt 5", "unknown flag --limt for 'dlq list'", "dlq [list] [--limit N]"},
      {"dlq retry --al", "unknown flag --al for 'dlq retry'", "dlq retry (--all | SEQUENCE...)"},
      {"digests --namespace orders --workflow-id o-1", "unknown flag --workflow-id for 'digests'",
       "digests --namespace NS"},
      {"compare --namespace orders --peer 127.0.0.1:1 --wiat 5", "unknown flag --wiat",
       "compare --namespace NS --peer HOST:PORT"},
      {"cluster list --from 127.0.0.1:1", "unknown flag --from for 'cluster list'", "cluster list"},
      {"migration status --namespace orders --to west", "unknown flag --to for 'migration status'",
       "migration status --namespace NS"},
      {"migration verify --namespace orders --source 127.0.0.1:1 --target 127.0.0.1:1 --repiar",
       "unknown flag --repiar for 'migration verify'", "migration verify --namespace NS"},
      {"load --namespace orders --workflow 5", "unknown flag --workflow for 'load'",
       "load --namespace NS"},
      {"fault list --all", "unknown flag --all for 'fault list'", "fault list"},
      {"--json=yes status", "--json takes no value", "--json"},
  };
  for (const Case& c : cases) ExpectRefusedCommandLine(c.args, c.problem, c.usage);
}

// Every command of xdcctl's table, which xdcctl parses its command line against: a command added
// later is checked too.
TEST_F(CliTest, EveryXdcctlCommandRefusesFlagsAndArgumentsItDoesNotDeclare) {
  std::set<std::string> all_flags;
  for (const CommandSpec& command : XdcctlCommands()) {
    for (const FlagSpec& flag : command.flags) all_flags.insert(flag.name);
  }
  for (const CommandSpec& command : XdcctlCommands()) {
    const std::string name = command.Name();
    const std::string usage = command.usage.substr(0, command.usage.find('\n'));
    std::vector<std::string> spellings = {name};
    if (command.last_word_optional) {
      spellings.push_back(absl::StrJoin(command.words.begin(), command.words.end() - 1, " "));
    }
    for (const std::string& spelled : spellings) {
      ExpectRefusedCommandLine(spelled + " --no-such-flag",
                               "unknown flag --no-such-flag for '" + name + "'", usage);
      ExpectRefusedCommandLine(spelled + " --adress 127.0.0.1:2",
                               "unknown flag --adress for '" + name + "' (did you mean --address?)",
                               usage);
    }
    std::set<std::string> declared;
    for (const FlagSpec& flag : command.flags) {
      declared.insert(flag.name);
      if (flag.arity == FlagArity::kNone) {
        ExpectRefusedCommandLine(absl::StrCat(name, " --", flag.name, "=1"),
                                 absl::StrCat("--", flag.name, " takes no value"), usage);
      } else {
        ExpectRefusedCommandLine(absl::StrCat(name, " --", flag.name),
                                 absl::StrCat("--", flag.name, " needs a value"), usage);
      }
    }
    // Another command's flag (the first one this command lacks).
    for (const std::string& other : all_flags) {
      if (declared.contains(other)) continue;
      ExpectRefusedCommandLine(absl::StrCat(name, " --", other, " 1"),
                               absl::StrCat("unknown flag --", other, " for '", name, "'"), usage);
      break;
    }
    if (command.max_operands != kAnyOperands) {
      std::string operands;
      for (int i = 0; i <= command.max_operands; ++i) absl::StrAppend(&operands, " arg", i);
      ExpectRefusedCommandLine(
          name + operands,
          absl::StrCat("unexpected argument 'arg", command.max_operands, "' for '", name, "'"),
          usage);
    }
  }
}

TEST_F(CliTest, XdcctlHelpShowsOneCommandsUsageAndFlags) {
  CommandResult result = RunCommand(Bin("xdcctl") + " missing-tasks acknowledge --help");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("missing-tasks acknowledge --peer CLUSTER [--shards"));
  EXPECT_THAT(result.output, HasSubstr("--shards N,N,..."));
  EXPECT_THAT(result.output, HasSubstr("--address HOST:PORT"));
  EXPECT_THAT(result.output, ::testing::Not(HasSubstr("namespace register")));
}

TEST_F(CliTest, XdcctlReportsAnUnreachableDaemon) {
  CommandResult result = RunCommand(Bin("xdcctl") + " --address 127.0.0.1:1 status");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("cannot connect to xdcd at 127.0.0.1:1"));
}

}  // namespace
}  // namespace xdc
