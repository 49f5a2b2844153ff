#include "cmd/boot_status.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "base/sd_notify.h"

extern char** environ;

namespace hpcs {

bool RunPlymouth(const char* const* args) {
  std::vector<char*> argv{const_cast<char*>("plymouth")};
  for (const char* const* a = args; *a; ++a) argv.push_back(const_cast<char*>(*a));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int r = posix_spawnp(&pid, "plymouth", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (r != 0) return false;
  // A plymouth that hangs must not hold the unlock: 2 s, then it is killed.
  for (int i = 0; i < 200; ++i) {
    int status = 0;
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (w < 0) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return false;
}

bool BootStatus::PlymouthRuns() {
  if (!plymouth_) {
    static const char* const kPing[] = {"--ping", nullptr};
    plymouth_ = RunPlymouth(kPing);
    LogDebug(*plymouth_ ? "plymouth runs: status lines go to its splash too"
                        : "no plymouth: status lines go to the console only");
  }
  return *plymouth_;
}

void BootStatus::Show(const std::string& text) {
  if (text == last_) return;
  last_ = text;
  std::string err;
  if (NotifyServiceManager("STATUS=" + text, &err) < 0) LogDebug(err);
  if (!PlymouthRuns()) return;
  std::string arg = "--text=" + text;
  const char* const args[] = {"display-message", arg.c_str(), nullptr};
  if (!RunPlymouth(args)) LogDebug("plymouth display-message failed");
}

}  // namespace hpcs
