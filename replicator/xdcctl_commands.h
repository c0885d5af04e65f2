// xdcctl's command table: every command, the flags it takes and its usage lines. xdcctl parses
// its command line against it (replicator/cli_flags.h: anything a command does not declare is
// refused, exit 2) and prints --help from it; tests iterate over it.
#pragma once

#include <string>
#include <vector>

#include "replicator/cli_flags.h"

namespace xdc {

// --address, --token, --json: taken by every command, before or after its words.
[[nodiscard]] const std::vector<FlagSpec>& XdcctlGlobalFlags();

// Every command, in the order --help lists them.
[[nodiscard]] const std::vector<CommandSpec>& XdcctlCommands();

// The --help text: the commands talking to one xdcd, then the migration commands (with their exit
// statuses) alone.
[[nodiscard]] std::string XdcctlUsage();
[[nodiscard]] std::string XdcctlMigrationUsage();

// What a usage error about `command` prints after the problem: its usage lines and its flags.
[[nodiscard]] std::string XdcctlCommandUsage(const CommandSpec& command);

}  // namespace xdc
