// The unlock races the passphrase prompt (issue 24): the unwrapping runs on a
// thread of its own while the main thread tells systemd the unit is ready
// (Type=notify) as soon as every key is settled or the grace period is over,
// whichever comes first, so that cryptsetup-pre.target (or
// remote-fs-pre.target) is never held for the whole deadline. From then on
// the main thread is a password agent (core/password_agent.h): a request of
// systemd-cryptsetup for one of our volumes is answered the moment its key
// is unwrapped, and a passphrase typed by a person wins just as well.
#ifndef HPCS_CMD_PROMPT_RACE_H_
#define HPCS_CMD_PROMPT_RACE_H_

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "core/keyring.h"
#include "core/password_agent.h"
#include "core/token_jobs.h"

namespace hpcs {

struct RaceOptions {
  std::chrono::milliseconds grace{5000};  // how long the prompt may be held back
  Deadline deadline;                      // the unwrapping's own end
  std::string ask_dir;                    // where requests appear (kAskPasswordDir)
  // After the prompt was let go with keys still coming: how long the agent
  // stays once they are all in, for a request that was on its way (only
  // under a service manager: a run by hand races no systemd-cryptsetup).
  std::chrono::milliseconds linger{10000};
  // Revoke, when the run ends, the keys added after the unit said it was
  // ready (the real root: its wipe service may have run by then), except
  // those with a linger marker under key_dir.
  bool revoke_late_keys = false;
  std::string key_dir;
  // hpcs tokens (issue 25): the instance whose tokens the agent answers
  // (empty: none), and the devices of the volumes this boot opens
  // (core/token_volumes.h): while one of them has such a token and is not
  // open, the agent stays, until the deadline.
  std::string token_instance;
  std::vector<std::string> boot_volumes;
  std::string sys = "/sys";
};

struct RaceResult {
  int rc = 0;            // what `work` returned
  bool stopped = false;  // SIGTERM or SIGINT came first: `work` may still run
};

// Runs work(keyring) on its own thread, the keyring being `keyring` with the
// agent listening in; `user_keys` are the descriptions of the user keys it
// may unwrap, `total` the number of keys in all. Then, on the same thread,
// serve_tokens(jobs, agent) unwraps the hpcs tokens the agent asks for
// (TokenJobs::Next until it says no more; each answer through Offer or
// Refuse). Returns when work returned and nothing is left to answer, or at
// a signal (then the caller must end the process without waiting for the
// thread: see RaceResult::stopped).
using ServeTokens = std::function<void(TokenJobs&, PasswordAgent&)>;
RaceResult RaceThePrompt(const RaceOptions& options, const std::set<std::string>& user_keys,
                         int total, Keyring& keyring, std::function<int(Keyring&)> work,
                         ServeTokens serve_tokens = {});

}  // namespace hpcs

#endif  // HPCS_CMD_PROMPT_RACE_H_
