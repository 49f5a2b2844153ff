// Running a helper program (cryptsetup, lsinitrd) and collecting what it
// says: argv only (no shell), a secret given on its stdin through a pipe
// (never in argv or the environment), stdout and stderr captured up to a
// cap, and a deadline after which the child is killed.
#ifndef HPCS_ADMIN_SUBPROCESS_H_
#define HPCS_ADMIN_SUBPROCESS_H_

#include <chrono>
#include <string>
#include <vector>

#include "base/secret.h"

namespace hpcs {

struct ProcessOptions {
  const Secret* stdin_data = nullptr;  // null: stdin is /dev/null
  std::string cwd;                     // empty: ours
  std::chrono::milliseconds timeout{std::chrono::minutes(2)};
  size_t max_output = 4 * 1024 * 1024;  // per stream; the rest is dropped
  bool secret_stdout = false;           // stdout into ProcessResult::secret_out, not out
};

struct ProcessResult {
  int exit_status = -1;  // the exit status, or -1 when killed by a signal
  int signal = 0;        // the signal that ended it
  bool timed_out = false;
  std::string out;
  std::string err;
  Secret secret_out;  // stdout, with ProcessOptions::secret_stdout
};

// Runs argv[0] (looked up in PATH) and waits for it. Returns 0 when it ran
// (whatever its exit status), -errno when it could not be started (-ENOENT:
// no such program) with the reason in *err.
int RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options,
               ProcessResult* result, std::string* err);

// "exit status 2: <last line of stderr>", "killed by signal 9", ... for
// messages about a run that failed.
std::string DescribeProcessFailure(const ProcessResult& r);

}  // namespace hpcs

#endif  // HPCS_ADMIN_SUBPROCESS_H_
