// The commands of the runbooks (runbooks/*.md), and an operator that runs commands and remembers
// them, so that tests can check that every command a runbook tells an operator to run was run.
//
// A command is reduced to its shape: the program, the xdcctl subcommand and the flags given
// (addresses, names, ids and other values left out; for curl, the path). The runbooks' commands
// are read from their ```sh blocks and the `$ ` lines of ```console blocks.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
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
#include "tests/run_command.h"
#include "tests/two_clusters.h"

namespace xdc {

// xdcctl's commands that take a subcommand (`xdcctl dlq retry 2 3`).
inline const std::set<std::string> kCommandGroups = {"namespace", "dlq",     "fault",
                                                     "migration", "cluster", "missing-tasks"};
// Flags of xdcctl that take a value (the value is not part of the shape).
inline const std::set<std::string> kFlagsWithValue = {"--address",
                                                      "--token",
                                                      "--namespace",
                                                      "--workflow-id",
                                                      "--peer",
                                                      "--wait",
                                                      "--to",
                                                      "--timeout",
                                                      "--reason",
                                                      "--limit",
                                                      "--clusters",
                                                      "--active",
                                                      "--event",
                                                      "--expected-next-event-id",
                                                      "--source",
                                                      "--target",
                                                      "--rate",
                                                      "--max-lag-seconds",
                                                      "--from",
                                                      "--cluster",
                                                      "--target-address",
                                                      "--shards",
                                                      "--branch"};

// The shape of one command line: "xdcctl dlq retry --all", "curl /metrics". Empty when the line
// is not an xdcctl or curl command. Pipes, redirections and comments are left out.
inline std::string Shape(absl::string_view line) {
  std::string command(line);
  // `for c in $EAST $WEST; do xdcctl --address $c ...; done`: the command is the loop's body.
  if (absl::StartsWith(command, "for ")) {
    if (size_t body = command.find("; do "); body != std::string::npos) {
      command = command.substr(body + 5);
      if (size_t end = command.find("; done"); end != std::string::npos) command.resize(end);
    }
  }
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
inline std::map<std::string, std::set<std::string>> RunbookShapes() {
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

// Runs commands as an operator would, and remembers the shape of each.
class Operator {
 public:
  // An exit code for commands whose exit code a test does not check (it checks their output).
  static constexpr int kAnyExitCode = -1000;

  // Runs `xdcctl --address ADDRESS ARGS`, expecting `exit_code`; returns its output.
  std::string Xdcctl(const std::string& address, const std::string& args, int exit_code = 0) {
    return Run(absl::StrCat(XDC_BIN_DIR, "/xdcctl --address ", address, " ", args), exit_code);
  }
  // Runs `xdcctl ARGS` (commands that name their clusters themselves, e.g. `migration verify`).
  std::string XdcctlCommand(const std::string& args, int exit_code) {
    return Run(absl::StrCat(XDC_BIN_DIR, "/xdcctl ", args), exit_code);
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
    if (exit_code != kAnyExitCode) {
      EXPECT_EQ(result.exit_code, exit_code) << command << "\n" << result.output;
    }
    Record(command);
    return result.output;
  }
  void Record(std::string command) {
    if (absl::StartsWith(command, XDC_BIN_DIR)) command = command.substr(command.find("xdcctl"));
    shapes_.insert(Shape(command));
  }
  std::set<std::string> shapes_;
};

// Expects every command shape of the runbooks named in `runbooks` (file names, e.g.
// "migration.md") to be among `run`; the failure names each command not run and its runbook.
inline void ExpectRunbookCommandsRun(const std::set<std::string>& run,
                                     const std::set<std::string>& runbooks) {
  std::vector<std::string> not_run;
  for (const auto& [shape, files] : RunbookShapes()) {
    std::vector<std::string> mine;
    for (const std::string& file : files) {
      if (runbooks.contains(file)) mine.push_back(file);
    }
    if (!mine.empty() && !run.contains(shape)) {
      not_run.push_back(absl::StrCat(shape, "  (", absl::StrJoin(mine, ", "), ")"));
    }
  }
  EXPECT_THAT(not_run, ::testing::IsEmpty())
      << "runbook commands this test does not run; run them in the test that covers the runbook:\n "
         " "
      << absl::StrJoin(not_run, "\n  ") << "\nrun: " << absl::StrJoin(run, " | ");
}

// Every runbook file name (runbooks/*.md).
inline std::set<std::string> RunbookFiles() {
  std::set<std::string> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(XDC_SOURCE_DIR) / "runbooks")) {
    if (entry.path().extension() == ".md") files.insert(entry.path().filename().string());
  }
  return files;
}

}  // namespace xdc
