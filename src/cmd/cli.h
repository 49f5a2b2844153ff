// The admin CLI `hpcs-for-luks`: verbs dispatched through one table.
#ifndef HPCS_CMD_CLI_H_
#define HPCS_CMD_CLI_H_

#include <span>
#include <string>

#include "cmd/cli_verbs.h"

namespace hpcs {

// Exit codes: 0 success, 1 failure, 2 usage error.
int CliMain(int argc, char** argv);

// What the command line asks for: a verb with its arguments (checked by the
// verb's check), --help, --version, or nothing but a usage error.
struct CommandLine {
  enum class Action { kRun, kHelp, kVersion, kUsageError };
  Action action = Action::kRun;
  std::string error;  // kUsageError: "get: --uuid needs a value"
  const Verb* verb = nullptr;
  Args args;
};

// argv[0] is the program. Options before the verb are the global ones; after
// it, the global ones and the verb's; the first problem ends the parsing, as
// does --help or --version.
CommandLine ParseCommandLine(std::span<char* const> argv, std::span<const Verb> verbs);

}  // namespace hpcs

#endif  // HPCS_CMD_CLI_H_
