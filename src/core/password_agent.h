// hpcs-unlock as a password agent (ask_password.h): while it keeps trying the
// KMS behind the passphrase prompt, it answers each pending request of
// systemd-cryptsetup for a volume whose key it has unwrapped, as soon as it
// has that key. A request is answered only when the device's own LUKS2
// header names the key (a luks2-keyring token for that description): never
// for another device, never by trying keys. Each device is answered at most
// once; if it asks again, the person at the console answers.
#ifndef HPCS_CORE_PASSWORD_AGENT_H_
#define HPCS_CORE_PASSWORD_AGENT_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/fd.h"
#include "base/secret.h"
#include "core/ask_password.h"
#include "core/keyring.h"

namespace hpcs {

// The user-key descriptions that the LUKS2 header of `device` names in its
// luks2-keyring tokens (the header read by the caller's means).
using DeviceKeyNames = std::function<int(const std::string& device, std::vector<std::string>* names,
                                         std::string* err)>;

struct AgentEvent {
  enum class Kind {
    kAnswered,  // the request got the key `key`
    kNotOurs,   // no token of the device names a key of ours: left alone
    kNoAnswer,  // ours (or its header unreadable), not answered: detail says why
  };
  Kind kind;
  std::string device;  // as the request names it
  std::string key;     // the user key's description
  std::string detail;
};

class PasswordAgent {
 public:
  // `dir`: where requests appear (kAskPasswordDir); `ours`: the descriptions
  // of the user keys this run unwraps.
  PasswordAgent(std::string dir, std::set<std::string> ours, DeviceKeyNames names);
  ~PasswordAgent();
  PasswordAgent(const PasswordAgent&) = delete;
  PasswordAgent& operator=(const PasswordAgent&) = delete;

  // The wake-up descriptors (inotify on `dir`, once it exists, and an
  // eventfd for Offer and Close).
  int Open(std::string* err);

  // From the unwrapping thread: the passphrase of user key `desc` is known.
  void Offer(const std::string& desc, Secret passphrase);
  // From the unwrapping thread: no key will come any more.
  void Close();
  bool closed() const;
  int offered() const;

  // Looks at every pending request and answers what it can; what happened
  // is appended to *events (each request reported once).
  void Scan(std::vector<AgentEvent>* events);
  // Requests for our devices that are waiting for a key we do not have yet.
  int waiting() const { return waiting_; }

  // Sleeps until a request comes or goes, a key is offered, the unwrapping
  // ends, `stop_fd` (if >= 0) becomes readable, or `until`. Returns false
  // when it was stop_fd.
  bool Wait(Clock::time_point until, int stop_fd);

 private:
  void Watch();
  void Drain();
  // Answers `r` (for `device`, whose header names our keys `mine`) if one
  // of them has come; false when it still waits for one.
  bool Answer(const AskRequest& r, const std::string& device, const std::vector<std::string>& mine,
              std::vector<AgentEvent>* events);

  const std::string dir_;
  const std::set<std::string> ours_;
  DeviceKeyNames names_;
  Fd inotify_, event_;
  bool watching_ = false;
  mutable std::mutex mu_;
  std::map<std::string, Secret> keys_;  // guarded by mu_
  bool closed_ = false;                 // guarded by mu_
  int offered_ = 0;                     // guarded by mu_
  std::set<std::string> settled_;       // request files answered or left alone
  std::set<std::string> answered_devices_;
  std::map<std::string, std::vector<std::string>> mine_of_;  // waiting request file -> our keys
  int waiting_ = 0;
};

// A keyring that hands each user key it adds to `agent` as well.
std::unique_ptr<Keyring> OfferingKeyring(Keyring& inner, PasswordAgent& agent);

}  // namespace hpcs

#endif  // HPCS_CORE_PASSWORD_AGENT_H_
