// The command layer of `hpcs-for-luks rewrap [--uuid CRK]` and
// `rewrap --to-crk UUID [--to-config FILE]` (rewrap.h): what they log, the
// config change of a move, and the exit status.
#ifndef HPCS_CMD_REWRAP_COMMAND_H_
#define HPCS_CMD_REWRAP_COMMAND_H_

#include <string>
#include <vector>

#include "core/config.h"
#include "kp/http.h"
#include "kp/kp_client.h"

namespace hpcs {

struct RewrapCommandOptions {
  std::string to_crk;     // empty: rewrap to the newest version of the same root key
  std::string to_config;  // with to_crk: the target instance's [KP] settings
  // Whose hpcs tokens move too (admin/rewrap_tokens.h): the crypttab's
  // volumes (empty: /etc/crypttab) and these devices.
  std::string crypttab;
  std::vector<std::string> devices;
  Deadline deadline;
};

// `kp` talks to the instance of `config`; `crk` wraps the keys now.
// 0 done, 1 failed (each failure logged).
int RewrapCommand(const Config& config, const std::string& crk, KpClient& kp,
                  const RewrapCommandOptions& options);

// Carries an interrupted `rewrap --to-crk` (its journal in the key directory)
// to its end, before anything else of `rewrap`: -1 when there was none, else
// the exit status (0 finished or rolled back, 1 when it could not).
int FinishInterruptedMove(const Config& config);

}  // namespace hpcs

#endif  // HPCS_CMD_REWRAP_COMMAND_H_
