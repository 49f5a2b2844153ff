// What the console shows while hpcs-unlock tries the KMS behind the
// passphrase prompt: a line on plymouth's splash where plymouth runs
// (`plymouth display-message`), and the unit's status for `systemctl status`
// (sd_notify STATUS=). The plain console gets hpcs-unlock's log lines.
#ifndef HPCS_CMD_BOOT_STATUS_H_
#define HPCS_CMD_BOOT_STATUS_H_

#include <optional>
#include <string>

namespace hpcs {

class BootStatus {
 public:
  // Shows `text` (no secret in it) where it can; repeated text is shown once.
  void Show(const std::string& text);

 private:
  bool PlymouthRuns();
  std::optional<bool> plymouth_;  // asked once: `plymouth --ping`
  std::string last_;
};

// Runs `plymouth ARGS...` (found through PATH), waiting at most 2 s for it;
// true when it ran and exited 0. Without plymouth: false at once.
bool RunPlymouth(const char* const* args);

}  // namespace hpcs

#endif  // HPCS_CMD_BOOT_STATUS_H_
