// The command layer of `hpcs-for-luks report [--json]`: runs the report
// (report.h), prints it on stdout, and gives the exit status. cli.cc
// registers the verb and gives it the loaded config.
#ifndef HPCS_CMD_REPORT_COMMAND_H_
#define HPCS_CMD_REPORT_COMMAND_H_

#include <string>
#include <vector>

#include "core/config.h"
#include "kp/http.h"

namespace hpcs {

struct ReportCommandOptions {
  bool json = false;
  std::string crypttab;                // empty: /etc/crypttab
  std::vector<std::string> initramfs;  // empty: the running and the newest kernel's
  std::vector<std::string> devices;    // more LUKS2 volumes whose hpcs tokens are checked
  Deadline deadline;
};

// 0 all good, 1 something will fail or is at risk (named in the output).
int ReportCommand(const Config& config, const ReportCommandOptions& options);

}  // namespace hpcs

#endif  // HPCS_CMD_REPORT_COMMAND_H_
