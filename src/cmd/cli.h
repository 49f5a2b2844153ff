// The admin CLI `hpcs-for-luks`: verbs dispatched through one table.
#ifndef HPCS_CMD_CLI_H_
#define HPCS_CMD_CLI_H_

namespace hpcs {

// Exit codes: 0 success, 1 failure, 2 usage error.
int CliMain(int argc, char** argv);

}  // namespace hpcs

#endif  // HPCS_CMD_CLI_H_
