// Every command a runbook tells an operator to run is run here, by xdcctl and curl as processes,
// against live daemons, in the situation the runbook describes, and its outcome is checked.
//
// The runbooks' commands are read from runbooks/*.md (the ```sh blocks, and `$ ` lines of
// ```console blocks) and reduced to their shape: the program, the xdcctl subcommand and the
// flags given (addresses, names, ids and other values left out; for curl, the path). The test
// records the shape of every command it runs; at the end, every runbook's shapes must be among
// them. A runbook that gains a command no test runs fails this test, naming the command and file.
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replicator/kafka_client.h"
#include "tests/run_command.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;

// xdcctl's commands that take a subcommand (`xdcctl dlq retry 2 3`).
const std::set<std::string> kCommandGroups = {"namespace", "dlq", "fault", "migration", "cluster"};
// Flags of xdcctl that take a value (the value is not part of the shape).
const std::set<std::string> kFlagsWithValue = {"--address",   "--token",
                                               "--namespace", "--workflow-id",
                                               "--peer",      "--wait",
                                               "--to",        "--timeout",
                                               "--reason",    "--limit",
                                               "--clusters",  "--active",
                                               "--event",     "--expected-next-event-id",
                                               "--source",    "--target",
                                               "--rate",      "--max-lag-seconds"};

// The shape of one command line: "xdcctl dlq retry --all", "curl /metrics". Empty when the line
// is not an xdcctl or curl command. Pipes, redirections and comments are left out.
std::string Shape(absl::string_view line) {
  std::string command(line);
  for (const char* end : {" #", " |", " >"}) {
    if (size_t at = command.find(end); at != std::string::npos) command.resize(at);
  }
  std::vector<std::string> tokens = absl::StrSplit(command, ' ', absl::SkipWhitespace());
  if (tokens.empty()) return "";
  if (tokens[0] == "curl") {
    for (const std::string& token : tokens) {
      if (!absl::StartsWith(token, "http")) continue;
      const size_t path = token.find('/', token.find("//") + 2);
      return absl::StrCat("curl ", path == std::string::npos ? "/" : token.substr(path));
    }
    return "curl";
  }
  if (tokens[0] != "xdcctl") return "";
  std::vector<std::string> words;
  std::set<std::string> flags;
  for (size_t i = 1; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    if (absl::StartsWith(token, "--")) {
      if (token != "--address") flags.insert(token);
      if (kFlagsWithValue.contains(token)) ++i;
      continue;
    }
    // The command, and the subcommand of a group; other words are arguments.
    const bool subcommand = words.size() == 1 && kCommandGroups.contains(words[0]) &&
                            std::all_of(token.begin(), token.end(),
                                        [](char c) { return absl::ascii_islower(c) || c == '-'; });
    if (words.empty() || subcommand) words.push_back(token);
  }
  std::vector<std::string> parts = {"xdcctl"};
  parts.insert(parts.end(), words.begin(), words.end());
  parts.insert(parts.end(), flags.begin(), flags.end());
  return absl::StrJoin(parts, " ");
}

// Every command shape of every runbook, with the runbooks that use it.
std::map<std::string, std::set<std::string>> RunbookShapes() {
  std::map<std::string, std::set<std::string>> shapes;
  const std::filesystem::path dir = std::filesystem::path(XDC_SOURCE_DIR) / "runbooks";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".md") continue;
    std::ifstream in(entry.path());
    std::string line;
    std::string block;  // the fence's language while inside a fenced block
    bool inside = false;
    std::string command;  // a command continued with a trailing backslash
    while (std::getline(in, line)) {
      const absl::string_view stripped = absl::StripAsciiWhitespace(line);
      if (absl::StartsWith(stripped, "```")) {
        inside = !inside;
        block = inside ? std::string(stripped.substr(3)) : "";
        continue;
      }
      if (!inside || (block != "sh" && block != "console")) continue;
      absl::string_view text = stripped;
      if (block == "console" && !absl::ConsumePrefix(&text, "$ ") && command.empty()) continue;
      command += std::string(text);
      if (absl::EndsWith(command, "\\")) {
        command.pop_back();
        continue;
      }
      if (std::string shape = Shape(command); !shape.empty()) {
        shapes[shape].insert(entry.path().filename().string());
      }
      command.clear();
    }
  }
  return shapes;
}

TEST(RunbookShapeTest, CommandsReduceToTheirProgramSubcommandAndFlags) {
  EXPECT_EQ(Shape("xdcctl --address $STANDBY dlq retry 2 3"), "xdcctl dlq retry");
  EXPECT_EQ(Shape("xdcctl --address $STANDBY dlq retry --all   # comment"),
            "xdcctl dlq retry --all");
  EXPECT_EQ(Shape("xdcctl --address $ACTIVE namespace failover orders --to west --force"),
            "xdcctl namespace failover --force --to");
  EXPECT_EQ(Shape("xdcctl --address $STANDBY --json dlq --limit 1000"),
            "xdcctl dlq --json --limit");
  EXPECT_EQ(Shape("xdcctl --address $CLUSTER status | tail -n 3"), "xdcctl status");
  EXPECT_EQ(Shape("curl -s http://$STANDBY/metrics | grep '^xdc_applier_halted'"), "curl /metrics");
  EXPECT_EQ(Shape("df -h /var/lib/xdc"), "");
}

// Runs commands as an operator would, and remembers the shape of each.
class Operator {
 public:
  // Runs `xdcctl --address ADDRESS ARGS`, expecting `exit_code`; returns its output.
  std::string Xdcctl(const std::string& address, const std::string& args, int exit_code = 0) {
    return Run(absl::StrCat(XDC_BIN_DIR, "/xdcctl --address ", address, " ", args), exit_code);
  }
  // Runs `curl -s http://ADDRESS PATH` and returns the body.
  std::string Curl(const std::string& address, const std::string& path) {
    return Run(absl::StrCat("curl -s http://", address, path), 0);
  }
  // Repeats an xdcctl command until its output contains `expected` (a state that replicates).
  bool XdcctlUntil(const std::string& address, const std::string& args,
                   const std::string& expected) {
    return WaitUntil([&] {
      const CommandResult result =
          RunCommand(absl::StrCat(XDC_BIN_DIR, "/xdcctl --address ", address, " ", args));
      Record(absl::StrCat("xdcctl --address ", address, " ", args));
      return result.exit_code == 0 && absl::StrContains(result.output, expected);
    });
  }
  const std::set<std::string>& shapes() const { return shapes_; }

 private:
  std::string Run(const std::string& command, int exit_code) {
    const CommandResult result = RunCommand(command);
    EXPECT_EQ(result.exit_code, exit_code) << command << "\n" << result.output;
    Record(command);
    return result.output;
  }
  void Record(std::string command) {
    if (absl::StartsWith(command, XDC_BIN_DIR)) command = command.substr(command.find("xdcctl"));
    shapes_.insert(Shape(command));
  }
  std::set<std::string> shapes_;
};

class RunbookTest : public TwoClustersTest {
 protected:
  // A message that is not a frame on `cluster`'s history partition 0: its peer parks it in the
  // DLQ as a corrupt message (corrupt-messages.md, dlq.md).
  void ProduceGarbage(const std::string& cluster) {
    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
        east_->kafka_bootstrap(), "runbook-test", [](uint64_t, const absl::Status&) {});
    ASSERT_TRUE(producer.ok()) << producer.status();
    ASSERT_TRUE(
        (*producer)->Produce(HistoryTopic(cluster, TestTopicPrefix()), 0, "not a frame", 1).ok());
    ASSERT_TRUE((*producer)->Flush(10000).ok());
  }

  // The sequence numbers in `xdcctl dlq list` output (lines "#SEQUENCE from ...").
  static std::vector<std::string> DlqSequences(const std::string& listing) {
    std::vector<std::string> sequences;
    for (absl::string_view line : absl::StrSplit(listing, '\n')) {
      if (!absl::ConsumePrefix(&line, "#")) continue;
      const size_t digits = line.find_first_not_of("0123456789");
      if (digits > 0 && digits != absl::string_view::npos) {
        sequences.emplace_back(line.substr(0, digits));
      }
    }
    return sequences;
  }

  Operator op_;
};

TEST_F(RunbookTest, EveryRunbookCommandRunsAgainstLiveDaemons) {
  const std::string east = east_->http_address();
  const std::string west = west_->http_address();

  // --- register-namespace.md ---
  op_.Xdcctl(east, "namespace register payments --clusters east,west --active east");
  ASSERT_TRUE(op_.XdcctlUntil(west, "namespace get payments", "active=east"));
  EXPECT_THAT(op_.Xdcctl(west,
                         "append --namespace orders --workflow-id gate-check "
                         "--expected-next-event-id 1 --event WORKFLOW_EXECUTION_STARTED",
                         1),
              HasSubstr("east"));
  op_.Xdcctl(east,
             "append --namespace orders --workflow-id replication-check "
             "--expected-next-event-id 1 --event WORKFLOW_EXECUTION_STARTED");
  EXPECT_THAT(op_.Xdcctl(east, "compare --namespace orders --peer " + west + " --wait 30"),
              HasSubstr("converged"));
  EXPECT_THAT(op_.Xdcctl(east, "namespace list"), HasSubstr("payments"));

  // --- reading state: status, metrics, readiness, histories (most runbooks) ---
  EXPECT_THAT(op_.Xdcctl(west, "status"), HasSubstr("total lag"));
  EXPECT_THAT(op_.Xdcctl(east, "status"), HasSubstr("total lag"));
  EXPECT_THAT(op_.Curl(west, "/metrics"), HasSubstr("xdc_applier_halted{"));
  EXPECT_THAT(op_.Curl(east, "/readyz"), HasSubstr("kafka"));
  EXPECT_THAT(op_.Xdcctl(east, "compare --namespace orders --peer " + west),
              HasSubstr("converged"));
  EXPECT_THAT(op_.Xdcctl(east, "compare --namespace orders --peer " + west + " --wait 60"),
              HasSubstr("converged"));
  for (const std::string& address : {east, west}) {
    EXPECT_THAT(op_.Xdcctl(address, "history --namespace orders --workflow-id replication-check"),
                HasSubstr("workflow replication-check"));
  }

  // --- graceful-handover.md, failback.md ---
  EXPECT_THAT(op_.Xdcctl(east, "namespace failover orders --to west --timeout 30s"),
              HasSubstr("handover complete"));
  EXPECT_THAT(op_.Xdcctl(west, "namespace describe orders"), HasSubstr("active=west"));
  EXPECT_THAT(op_.Xdcctl(west, "namespace history orders"), HasSubstr("graceful"));
  EXPECT_THAT(op_.Xdcctl(east, "compare --namespace orders --peer " + west + " --wait 60"),
              HasSubstr("converged"));
  EXPECT_THAT(op_.Xdcctl(west, "namespace failover orders --to east --timeout 30s"),
              HasSubstr("handover complete"));
  EXPECT_THAT(op_.Xdcctl(east, "namespace history orders"), HasSubstr("west->east"));

  // --- handover-stuck.md: a corrupt message parked on west may hold east's events, so west
  // does not activate; cancel, then force the source itself out of a second handover ---
  ASSERT_NO_FATAL_FAILURE(ProduceGarbage("east"));
  ASSERT_TRUE(op_.XdcctlUntil(west, "dlq list --limit 1000", "PARK_REASON_CORRUPT_MESSAGE"));
  op_.Xdcctl(east, "namespace failover orders --to west --timeout 10m --no-wait");
  EXPECT_THAT(op_.Xdcctl(east, "namespace describe orders"), HasSubstr("HANDOVER"));
  EXPECT_THAT(op_.Xdcctl(west, "namespace describe orders"), HasSubstr("here:"));
  EXPECT_THAT(op_.Xdcctl(east, "namespace cancel orders --reason \"west lags, retry tonight\""),
              HasSubstr("handover cancelled by west"));
  EXPECT_THAT(op_.Xdcctl(east, "namespace history orders"), HasSubstr("cancelled"));
  op_.Xdcctl(east, "namespace failover orders --to west --timeout 10m --no-wait");
  EXPECT_THAT(op_.Xdcctl(east, "namespace failover orders --to east --force"), HasSubstr("east"));
  EXPECT_THAT(op_.Xdcctl(east, "namespace describe orders"),
              HasSubstr("state=NAMESPACE_STATE_ACTIVE"));

  // --- forced-failover.md: west takes over; the old active learns it when it hears west ---
  EXPECT_THAT(op_.Xdcctl(west, "namespace failover orders --to west --force"), HasSubstr("west"));
  ASSERT_TRUE(op_.XdcctlUntil(east, "namespace describe orders", "active=west"));
  EXPECT_THAT(op_.Xdcctl(west, "namespace history orders"), HasSubstr("forced"));
  EXPECT_THAT(op_.Xdcctl(west, "compare --namespace orders --peer " + east + " --wait 60"),
              HasSubstr("converged"));

  // --- dlq.md, corrupt-messages.md, tasks-parked.md: three corrupt messages parked on west ---
  for (int i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(ProduceGarbage("east"));
  ASSERT_TRUE(WaitUntil([&] { return DlqSequences(op_.Xdcctl(west, "dlq list")).size() == 3; }));
  const std::vector<std::string> sequences = DlqSequences(op_.Xdcctl(west, "dlq"));
  ASSERT_EQ(sequences.size(), 3u);
  EXPECT_THAT(op_.Xdcctl(west, "dlq --limit 1000"), HasSubstr("PARK_REASON_CORRUPT_MESSAGE"));
  EXPECT_THAT(op_.Xdcctl(west, "--json dlq --limit 1000"),
              HasSubstr("PARK_REASON_CORRUPT_MESSAGE"));
  EXPECT_THAT(op_.Xdcctl(west, "--json dlq list --limit 10000"), HasSubstr("raw_message"));
  // A corrupt message cannot be applied by a retry: it stays.
  op_.Xdcctl(west, "dlq retry " + sequences[0] + " " + sequences[1]);
  op_.Xdcctl(west, "dlq retry --all");
  EXPECT_EQ(DlqSequences(op_.Xdcctl(west, "dlq list")).size(), 3u);
  op_.Xdcctl(west, "dlq purge " + sequences[0]);
  EXPECT_EQ(DlqSequences(op_.Xdcctl(west, "dlq list")).size(), 2u);
  op_.Xdcctl(west, "dlq purge --all");
  EXPECT_TRUE(DlqSequences(op_.Xdcctl(west, "dlq list")).empty());
  EXPECT_THAT(op_.Curl(west, "/metrics"), HasSubstr("xdc_dlq_entries{"));

  // --- rotate-api-token.md: a daemon with a token refuses the old one, takes the new one ---
  ScopedDir token_dir{"token"};
  // Its own Kafka (embedded, or its own topics on the real broker).
  DaemonConfig config = MakeConfig("east", token_dir.path(), "");
  config.mutable_kafka()->set_topic_prefix(absl::StrCat(TestTopicPrefix(), "xdc-token"));
  const std::string kNew = "new-token-0123456789abcdef";
  config.mutable_api()->set_bearer_token(kNew);
  absl::StatusOr<std::unique_ptr<Daemon>> secured = Daemon::Start(config, Tunables{});
  ASSERT_TRUE(secured.ok()) << secured.status();
  const std::string cluster = (*secured)->http_address();
  EXPECT_THAT(op_.Xdcctl(cluster, "--token old-token-0123456789abcdef dlq retry 0", 1),
              HasSubstr("UNAUTHENTICATED"));
  op_.Xdcctl(cluster, "--token " + kNew + " dlq retry 0");
  EXPECT_THAT(op_.Xdcctl(cluster, "--token " + kNew + " status"), HasSubstr("total lag"));
  EXPECT_THAT(op_.Curl(cluster, "/metrics"), HasSubstr("xdc_api_unauthenticated_total{"));

  // Every command shape of every runbook was run above.
  std::vector<std::string> not_run;
  for (const auto& [shape, files] : RunbookShapes()) {
    if (!op_.shapes().contains(shape)) {
      not_run.push_back(absl::StrCat(shape, "  (", absl::StrJoin(files, ", "), ")"));
    }
  }
  EXPECT_THAT(not_run, ::testing::IsEmpty())
      << "runbook commands no test runs; run them in this test:\n  "
      << absl::StrJoin(not_run, "\n  ") << "\nrun: " << absl::StrJoin(op_.shapes(), " | ");
}

}  // namespace
}  // namespace xdc
