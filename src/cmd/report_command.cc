#include "cmd/report_command.h"

#include <unistd.h>

#include "admin/report.h"
#include "base/fileio.h"
#include "base/log.h"

namespace hpcs {

int ReportCommand(const Config& config, const ReportCommandOptions& options) {
  ReportOptions o;
  if (!options.crypttab.empty()) o.crypttab = options.crypttab;
  o.initramfs = options.initramfs;
  o.devices = options.devices;
  o.deadline = options.deadline;
  Report r = RunReport(config, o);
  std::string text = options.json ? RenderReportJson(r) : RenderReportTable(r);
  std::string err;
  if (WriteAllFd(STDOUT_FILENO, text, &err) < 0) {
    LogError("Failed to write the report to standard output: " + err);
    return 1;
  }
  return r.ExitCode();
}

}  // namespace hpcs
