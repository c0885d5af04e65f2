// A command-line parser for a program with commands (xdcctl): each command declares its words,
// its flags and how many operands it takes, and anything it does not declare is refused. No
// process-global state, no I/O: the caller prints the error and the command's usage.
//
// Syntax: --flag, --flag VALUE, --flag=VALUE; -h is --help. Global flags and the command's flags
// may come before, between or after the command's words. A flag that takes a value refuses a
// next argument starting with "--" as its value (write --flag=--text for that).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace xdc {

enum class FlagArity {
  kNone,      // a switch: --json (refuses --json=VALUE)
  kOne,       // one value, given once: --peer east, --peer=east
  kRepeated,  // one value per use, may be given again: --event A --event B
};

struct FlagSpec {
  std::string name;  // without the leading "--"
  FlagArity arity = FlagArity::kNone;
  std::string value_name;  // what the value is, e.g. "CLUSTER" ("" for a switch)
  std::string help;        // one line
};

// Operands a command takes at most (the words after its own), when there is no limit.
inline constexpr int kAnyOperands = -1;

struct CommandSpec {
  std::vector<std::string> words;  // {"missing-tasks", "acknowledge"}
  // The last word may be left out when nothing follows: "dlq" is "dlq list".
  bool last_word_optional = false;
  int max_operands = 0;  // or kAnyOperands; a command checks its minimum itself
  std::vector<FlagSpec> flags;
  std::string usage;  // its lines of the --help text

  // "missing-tasks acknowledge".
  [[nodiscard]] std::string Name() const;
};

struct CommandLine {
  // Set when parsing failed: what is wrong, e.g. "unknown flag --shard for 'missing-tasks
  // acknowledge' (did you mean --shards?)". `command` is then the command it concerns, if known.
  std::string error;
  bool help = false;                     // --help or -h was given (parsing stopped without error)
  const CommandSpec* command = nullptr;  // null when no command was named (or, with help, found)
  // The command's words (an optional last word included), then its operands.
  std::vector<std::string> positional;
  // Each flag given, with its values in order ("true" for a switch).
  std::map<std::string, std::vector<std::string>> flags;
};

// Parses `args` (argv without the program name) against `globals` (flags every command takes) and
// `commands`. A flag name must have one arity across all of them. No command named and no error:
// command is null and positional empty.
[[nodiscard]] CommandLine ParseCommandLine(const std::vector<std::string>& args,
                                           const std::vector<FlagSpec>& globals,
                                           const std::vector<CommandSpec>& commands);

// "  --peer CLUSTER          the cluster whose ...\n", one line per flag.
[[nodiscard]] std::string FlagsHelp(const std::vector<FlagSpec>& flags);

// The candidate closest to `name` by edit distance, if at most 2 and less than name's length; ""
// if none: what "did you mean" offers.
[[nodiscard]] std::string ClosestFlag(const std::string& name,
                                      const std::vector<std::string>& candidates);

}  // namespace xdc
