// ParseCommandLine (replicator/cli_flags.h): commands declare their flags and operands, and
// everything else is refused; and xdcctl's command table is consistent with its --help.
#include "replicator/cli_flags.h"

#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replicator/xdcctl_commands.h"

namespace xdc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::vector<FlagSpec> kGlobals = {{"address", FlagArity::kOne, "HOST:PORT", ""},
                                        {"json", FlagArity::kNone, "", ""}};

const std::vector<CommandSpec> kCommands = {
    {{"status"}, false, 0, {}, ""},
    {{"missing-tasks", "acknowledge"},
     false,
     0,
     {{"peer", FlagArity::kOne, "CLUSTER", ""}, {"shards", FlagArity::kOne, "N,N", ""}},
     ""},
    {{"append"}, false, 0, {{"event", FlagArity::kRepeated, "TYPE", ""}}, ""},
    {{"dlq", "list"}, true, 0, {{"limit", FlagArity::kOne, "N", ""}}, ""},
    {{"dlq", "retry"}, false, kAnyOperands, {{"all", FlagArity::kNone, "", ""}}, ""},
    {{"namespace", "get"}, false, 1, {}, ""},
    {{"namespace", "list"}, false, 0, {}, ""},
};

CommandLine Parse(const std::string& line) {
  return ParseCommandLine(absl::StrSplit(line, ' ', absl::SkipEmpty()), kGlobals, kCommands);
}

TEST(CliFlagsTest, FlagsGoBeforeBetweenOrAfterTheCommandsWords) {
  CommandLine line = Parse("--json missing-tasks --address=h:1 acknowledge --peer east --shards 3");
  ASSERT_EQ(line.error, "");
  ASSERT_NE(line.command, nullptr);
  EXPECT_EQ(line.command->Name(), "missing-tasks acknowledge");
  EXPECT_THAT(line.positional, ElementsAre("missing-tasks", "acknowledge"));
  EXPECT_THAT(line.flags["json"], ElementsAre("true"));
  EXPECT_THAT(line.flags["address"], ElementsAre("h:1"));
  EXPECT_THAT(line.flags["peer"], ElementsAre("east"));
  EXPECT_THAT(line.flags["shards"], ElementsAre("3"));
  EXPECT_FALSE(line.help);
}

TEST(CliFlagsTest, AnUnknownFlagIsRefusedNamingTheCommandAndTheClosestFlag) {
  CommandLine line = Parse("missing-tasks acknowledge --peer east --shard 3");
  EXPECT_EQ(line.error,
            "unknown flag --shard for 'missing-tasks acknowledge' (did you mean --shards?)");
  ASSERT_NE(line.command, nullptr);
  EXPECT_EQ(line.command->Name(), "missing-tasks acknowledge");
  EXPECT_THAT(line.flags, IsEmpty());
  // Another command's flag is as unknown as a misspelling.
  EXPECT_EQ(Parse("status --peer east").error, "unknown flag --peer for 'status'");
  EXPECT_EQ(Parse("status --frobnicate").error, "unknown flag --frobnicate for 'status'");
  EXPECT_EQ(Parse("status -x").error, "unknown flag -x for 'status'");
  EXPECT_EQ(Parse("status --").error, "unknown flag -- for 'status'");
}

TEST(CliFlagsTest, AMisspelledFlagsValueIsNotTakenForTheCommand) {
  CommandLine line = Parse("--adress h:1 status");
  EXPECT_EQ(line.error, "unknown flag --adress for 'status' (did you mean --address?)");
  ASSERT_NE(line.command, nullptr);
  EXPECT_EQ(line.command->Name(), "status");
  EXPECT_EQ(Parse("status --adress h:1").error,
            "unknown flag --adress for 'status' (did you mean --address?)");
  // No command either way: the flag is what is said.
  CommandLine neither = Parse("--adress h:1 frobnicate");
  EXPECT_EQ(neither.error, "unknown flag --adress (did you mean --address?)");
  EXPECT_EQ(neither.command, nullptr);
}

TEST(CliFlagsTest, AValueIsRequiredWhereDeclaredAndRefusedOnASwitch) {
  EXPECT_EQ(Parse("missing-tasks acknowledge --peer").error, "--peer needs a value");
  EXPECT_EQ(Parse("missing-tasks acknowledge --peer --shards 3").error, "--peer needs a value");
  EXPECT_EQ(Parse("status --address").error, "--address needs a value");
  EXPECT_EQ(Parse("--address").error, "--address needs a value");
  EXPECT_EQ(Parse("--json=yes status").error, "--json takes no value");
  EXPECT_EQ(Parse("dlq retry --all=false").error, "--all takes no value");
  // An empty value is a value: the command decides what it means.
  CommandLine empty = Parse("missing-tasks acknowledge --peer east --shards=");
  EXPECT_EQ(empty.error, "");
  EXPECT_THAT(empty.flags["shards"], ElementsAre(""));
}

TEST(CliFlagsTest, ASingleValueFlagGivenTwiceIsRefusedARepeatableOneIsKept) {
  EXPECT_EQ(Parse("missing-tasks acknowledge --peer east --peer west").error,
            "--peer is given more than once ('east', then 'west')");
  CommandLine line = Parse("append --event A --event=B");
  ASSERT_EQ(line.error, "");
  EXPECT_THAT(line.flags["event"], ElementsAre("A", "B"));
}

TEST(CliFlagsTest, OperandsBeyondTheCommandsAreRefused) {
  EXPECT_EQ(Parse("status now").error, "unexpected argument 'now' for 'status'");
  EXPECT_EQ(Parse("namespace list orders").error,
            "unexpected argument 'orders' for 'namespace list'");
  EXPECT_EQ(Parse("namespace get orders more").error,
            "unexpected argument 'more' for 'namespace get'");
  CommandLine get = Parse("namespace get orders");
  ASSERT_EQ(get.error, "");
  EXPECT_THAT(get.positional, ElementsAre("namespace", "get", "orders"));
  // The command checks its minimum itself.
  EXPECT_EQ(Parse("namespace get").error, "");
  CommandLine retry = Parse("dlq retry 1 2 -3");
  ASSERT_EQ(retry.error, "");
  EXPECT_THAT(retry.positional, ElementsAre("dlq", "retry", "1", "2", "-3"));
}

TEST(CliFlagsTest, AnOptionalLastWordIsFilledIn) {
  CommandLine line = Parse("dlq --limit 5");
  ASSERT_EQ(line.error, "");
  ASSERT_NE(line.command, nullptr);
  EXPECT_EQ(line.command->Name(), "dlq list");
  EXPECT_THAT(line.positional, ElementsAre("dlq", "list"));
  EXPECT_EQ(Parse("dlq --limt 5").error,
            "unknown flag --limt for 'dlq list' (did you mean --limit?)");
  EXPECT_EQ(Parse("dlq 7").error, "unknown command 'dlq 7'; 'dlq' takes list, retry");
}

TEST(CliFlagsTest, UnknownCommandsAndMissingSubcommandsAreRefused) {
  EXPECT_EQ(Parse("frobnicate").error, "unknown command 'frobnicate'");
  EXPECT_EQ(Parse("namespace").error, "'namespace' needs one of: get, list");
  EXPECT_EQ(Parse("namespace frob x").error,
            "unknown command 'namespace frob'; 'namespace' takes get, list");
  // A flag no command knows is the first thing said.
  EXPECT_EQ(Parse("frobnicate --shrads 3").error, "unknown flag --shrads (did you mean --shards?)");
  CommandLine none = Parse("--json");
  EXPECT_EQ(none.error, "");
  EXPECT_EQ(none.command, nullptr);
}

TEST(CliFlagsTest, HelpAnywhereWinsOverEverythingElse) {
  CommandLine line = Parse("missing-tasks acknowledge --shard 3 --help");
  EXPECT_TRUE(line.help);
  EXPECT_EQ(line.error, "");
  ASSERT_NE(line.command, nullptr);
  EXPECT_EQ(line.command->Name(), "missing-tasks acknowledge");
  EXPECT_TRUE(Parse("-h").help);
  EXPECT_EQ(Parse("-h").command, nullptr);
}

TEST(CliFlagsTest, ClosestFlagOffersOnlyNearNames) {
  EXPECT_EQ(ClosestFlag("shard", {"peer", "shards"}), "shards");
  EXPECT_EQ(ClosestFlag("repiar", {"repair", "wait"}), "repair");
  EXPECT_EQ(ClosestFlag("x", {"to"}), "");
  EXPECT_EQ(ClosestFlag("frobnicate", {"force", "from"}), "");
}

// Every `--flag` a command's usage lines show is one it declares (or a global one), every flag
// it declares is in --help, and a flag name means the same arity everywhere (the parser decides
// what takes a value before it knows the command).
TEST(XdcctlCommandTableTest, UsageLinesAndDeclaredFlagsAgree) {
  const std::string help = XdcctlUsage() + XdcctlMigrationUsage();
  std::map<std::string, FlagArity> arity;
  for (const FlagSpec& flag : XdcctlGlobalFlags()) arity[flag.name] = flag.arity;
  std::set<std::string> names;
  for (const CommandSpec& command : XdcctlCommands()) {
    EXPECT_TRUE(names.insert(command.Name()).second) << command.Name() << " is declared twice";
    EXPECT_THAT(command.usage, HasSubstr("  " + command.words[0])) << command.Name();
    std::set<std::string> declared;
    for (const FlagSpec& flag : XdcctlGlobalFlags()) declared.insert(flag.name);
    for (const FlagSpec& flag : command.flags) {
      declared.insert(flag.name);
      EXPECT_THAT(help, HasSubstr("--" + flag.name)) << command.Name();
      EXPECT_FALSE(flag.help.empty()) << command.Name() << " --" << flag.name;
      auto [it, inserted] = arity.emplace(flag.name, flag.arity);
      EXPECT_EQ(it->second, flag.arity) << "--" << flag.name << " in " << command.Name();
    }
    const std::regex shown("--([a-z][a-z0-9-]*)");
    for (std::sregex_iterator m(command.usage.begin(), command.usage.end(), shown), end; m != end;
         ++m) {
      EXPECT_TRUE(declared.contains((*m)[1].str()))
          << command.Name() << " shows " << (*m)[0] << " but does not declare it";
    }
  }
}

}  // namespace
}  // namespace xdc
