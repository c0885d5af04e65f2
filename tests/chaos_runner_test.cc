// The built xdc-chaos binary, run as CI runs it, briefly, on the mock broker: a scenario passes
// with exit 0 and a JSON report holding its seed and schedule; the deliberately lossy self-test
// fails with exit 1 and the checker's violations in the report (the checker can fail); the seed
// a run printed replays the identical schedule; usage errors exit 2.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "chaos/scenarios.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/run_command.h"

namespace xdc {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;
using ::testing::HasSubstr;

// The shortest fault window a schedule allows: the runs here are about the runner, not the
// product, so they stay brief.
constexpr char kShortWindow[] = "6s";

std::string Chaos() { return absl::StrCat(XDC_BIN_DIR, "/xdc-chaos"); }

class ChaosRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = absl::StrCat(::testing::TempDir(), "xdc_chaos_runner_XXXXXX");
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "chaos_runner_test: keeping %s for inspection\n", dir_.c_str());
    } else {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // Runs `xdc-chaos <args>`; the output is echoed when the test fails.
  CommandResult Run(const std::string& args) {
    CommandResult result = RunCommand(absl::StrCat(Chaos(), " ", args));
    outputs_ += absl::StrCat("$ xdc-chaos ", args, "   # exit ", result.exit_code, "\n",
                             result.output, "\n");
    return result;
  }

  Struct ReadReport(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    Struct report;
    const auto status = google::protobuf::util::JsonStringToMessage(text.str(), &report);
    EXPECT_TRUE(status.ok()) << path << ": " << status.ToString() << "\n" << text.str();
    return report;
  }

  static const Value& Field(const Struct& s, const std::string& name) {
    static const Value kNull;
    auto it = s.fields().find(name);
    return it == s.fields().end() ? kNull : it->second;
  }

  std::string dir_;
  std::string outputs_;
};

// The seed xdc-chaos printed first ("xdc-chaos: seed N").
uint64_t PrintedSeed(const std::string& output) {
  std::smatch match;
  uint64_t seed = 0;
  if (std::regex_search(output, match, std::regex("^xdc-chaos: seed ([0-9]+)")) &&
      absl::SimpleAtoi(match[1].str(), &seed)) {
    return seed;
  }
  ADD_FAILURE() << "no seed printed first in:\n" << output;
  return 0;
}

TEST_F(ChaosRunnerTest, UsageErrorsExitWith2AndListNamesEveryScenario) {
  EXPECT_EQ(Run("").exit_code, 2);
  EXPECT_EQ(Run("frobnicate").exit_code, 2);
  EXPECT_EQ(Run("run").exit_code, 2) << "--scenario is required";
  EXPECT_EQ(Run("run --scenario no-such-thing").exit_code, 2);
  EXPECT_EQ(Run("run --scenario kill-restart --duration 1s").exit_code, 2);
  EXPECT_EQ(Run("run --scenario kill-restart --clusters 7").exit_code, 2);
  EXPECT_EQ(Run("run --scenario kill-restart --seed -3").exit_code, 2);
  EXPECT_EQ(Run("run --scenario kill-restart --bogus 1").exit_code, 2);
  const CommandResult wrong_broker = Run("run --scenario broker-kill --broker mock");
  EXPECT_EQ(wrong_broker.exit_code, 2);
  EXPECT_THAT(wrong_broker.output, HasSubstr("real only"));

  const CommandResult help = Run("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, HasSubstr("Exit status"));
  const CommandResult list = Run("list");
  EXPECT_EQ(list.exit_code, 0);
  for (const chaos::Scenario& s : chaos::Scenarios()) {
    EXPECT_THAT(list.output, HasSubstr(s.name));
  }
  if (HasFailure()) std::fprintf(stderr, "%s", outputs_.c_str());
}

TEST_F(ChaosRunnerTest, PlanPrintsTheSameScheduleForTheSameSeed) {
  const CommandResult first = Run("plan --scenario split-brain --seed 77 --clusters 3");
  const CommandResult second = Run("plan --scenario split-brain --seed 77 --clusters 3");
  const CommandResult other = Run("plan --scenario split-brain --seed 78 --clusters 3");
  EXPECT_EQ(first.exit_code, 0);
  EXPECT_EQ(first.output, second.output);
  EXPECT_NE(first.output, other.output);
  EXPECT_THAT(first.output, HasSubstr("forced-failover"));
  if (HasFailure()) std::fprintf(stderr, "%s", outputs_.c_str());
}

TEST_F(ChaosRunnerTest, AScenarioPassesWithExit0AndAReportHoldingItsSeedAndSchedule) {
  const std::string report_path = dir_ + "/pass.json";
  const CommandResult run =
      Run(absl::StrCat("run --scenario partition --seed 11 --duration ", kShortWindow,
                       " --broker mock --workdir ", dir_, "/pass --report ", report_path));
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(PrintedSeed(run.output), 11u);
  EXPECT_THAT(run.output, HasSubstr("PASSED: partition, seed 11"));

  const Struct report = ReadReport(report_path);
  EXPECT_EQ(Field(report, "seed").number_value(), 11);
  EXPECT_EQ(Field(report, "scenario").string_value(), "partition");
  EXPECT_EQ(Field(report, "broker").string_value(), "mock");
  EXPECT_EQ(Field(report, "verdict").string_value(), "passed");
  EXPECT_EQ(Field(report, "exit_code").number_value(), 0);
  EXPECT_THAT(Field(report, "replay").string_value(), HasSubstr("--seed 11"));
  const auto& schedule = Field(report, "schedule").list_value();
  ASSERT_GT(schedule.values_size(), 0);
  EXPECT_EQ(Field(schedule.values(0).struct_value(), "kind").string_value(), "partition");
  EXPECT_GT(Field(report, "events").list_value().values_size(), 0);
  EXPECT_GT(Field(Field(report, "workload").struct_value(), "acked").number_value(), 0);
  EXPECT_TRUE(Field(Field(report, "check").struct_value(), "passed").bool_value());
  if (HasFailure()) std::fprintf(stderr, "%s", outputs_.c_str());
}

TEST_F(ChaosRunnerTest, TheSelfTestFailsAndItsPrintedSeedReplaysTheSameSchedule) {
  const std::string first_path = dir_ + "/first.json";
  const CommandResult first =
      Run(absl::StrCat("run --scenario self-test-loss --duration ", kShortWindow,
                       " --broker mock --workdir ", dir_, "/first --report ", first_path));
  EXPECT_EQ(first.exit_code, 1) << "the checker must find the lost events";
  const uint64_t seed = PrintedSeed(first.output);
  EXPECT_THAT(first.output, HasSubstr("VIOLATED: self-test-loss"));

  const Struct report = ReadReport(first_path);
  EXPECT_EQ(Field(report, "verdict").string_value(), "violated");
  EXPECT_EQ(Field(report, "exit_code").number_value(), 1);
  EXPECT_EQ(Field(report, "seed").number_value(), static_cast<double>(seed));
  const Struct& check = Field(report, "check").struct_value();
  EXPECT_FALSE(Field(check, "passed").bool_value());
  EXPECT_GT(Field(check, "violations").list_value().values_size(), 0);
  EXPECT_TRUE(Field(report, "logs").has_struct_value()) << "a failed run names its logs";

  const std::string second_path = dir_ + "/second.json";
  const CommandResult second =
      Run(absl::StrCat("run --scenario self-test-loss --seed ", seed, " --duration ", kShortWindow,
                       " --broker mock --workdir ", dir_, "/second --report ", second_path));
  EXPECT_EQ(second.exit_code, 1);
  const Struct replay = ReadReport(second_path);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(Field(report, "schedule"),
                                                                 Field(replay, "schedule")));
  EXPECT_EQ(Field(report, "workload_seed").number_value(),
            Field(replay, "workload_seed").number_value());
  if (HasFailure()) std::fprintf(stderr, "%s", outputs_.c_str());
}

}  // namespace
}  // namespace xdc
