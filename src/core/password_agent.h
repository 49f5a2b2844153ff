// hpcs-unlock as a password agent (ask_password.h): while it keeps trying the
// KMS behind the passphrase prompt, it answers each pending request of
// systemd-cryptsetup for a volume whose key it has unwrapped, as soon as it
// has that key. A request is answered only when the device's own LUKS2
// header names the key (a luks2-keyring token for that description), or
// holds an `hpcs` token of our instance, whose unwrapping it then asks for
// (core/token_jobs.h): never for another device, never by trying keys. Each
// device is answered at most once; if it asks again, the person at the
// console answers.
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
#include "core/token_jobs.h"

namespace hpcs {

// What the LUKS2 header of a device says we may answer it with (the header
// read by the caller's means).
struct DeviceClaims {
  std::vector<std::string> key_names;    // of its luks2-keyring tokens
  std::string uuid;                      // its LUKS UUID
  std::vector<std::string> hpcs_tokens;  // the JSON of its hpcs tokens for our instance
};
using DeviceLookup =
    std::function<int(const std::string& device, DeviceClaims* claims, std::string* err)>;

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
  // of the user keys this run unwraps; `jobs`: where to ask for the
  // unwrapping of a device's hpcs tokens (nullptr: they are not answered).
  PasswordAgent(std::string dir, std::set<std::string> ours, DeviceLookup lookup,
                TokenJobs* jobs = nullptr);
  ~PasswordAgent();
  PasswordAgent(const PasswordAgent&) = delete;
  PasswordAgent& operator=(const PasswordAgent&) = delete;

  // The wake-up descriptors (inotify on `dir`, once it exists, and an
  // eventfd for Offer and Close).
  int Open(std::string* err);

  // From the unwrapping thread: the passphrase of user key `desc` is known.
  void Offer(const std::string& desc, Secret passphrase);
  // From the unwrapping thread: the passphrase of the token job `name` is
  // known (not counted by offered(): it went into no keyring, so no request
  // can be on its way for it).
  void OfferTokenAnswer(const std::string& name, Secret passphrase);
  // From the unwrapping thread: the token job `name` failed (`why`): its
  // requests are left to the person at the console.
  void Refuse(const std::string& name, std::string why);
  // From the unwrapping thread: no key will come any more.
  void Close();
  bool closed() const;
  int offered() const;

  // Looks at every pending request and answers what it can; what happened
  // is appended to *events (each request reported once).
  void Scan(std::vector<AgentEvent>* events);
  // Requests for our devices that are waiting for a key we do not have yet;
  // of them, those waiting for a token job.
  int waiting() const { return waiting_; }
  int waiting_for_tokens() const { return waiting_tokens_; }

  // Sleeps until a request comes or goes, a key is offered, the unwrapping
  // ends, `stop_fd` (if >= 0) becomes readable, or `until`. Returns false
  // when it was stop_fd.
  bool Wait(Clock::time_point until, int stop_fd);

 private:
  void Watch();
  void Drain();
  void Store(const std::string& name, Secret passphrase, bool count);
  // Answers `r` (for `device`, whose header names our keys `mine`) if one
  // of them has come; false when it still waits for one.
  bool Answer(const AskRequest& r, const std::string& device, const std::vector<std::string>& mine,
              std::vector<AgentEvent>* events);

  const std::string dir_;
  const std::set<std::string> ours_;
  DeviceLookup lookup_;
  TokenJobs* jobs_;
  Fd inotify_, event_;
  bool watching_ = false;
  mutable std::mutex mu_;
  std::map<std::string, Secret> keys_;          // guarded by mu_
  std::map<std::string, std::string> refused_;  // guarded by mu_: token job -> why
  std::set<std::string> submitted_;             // token jobs asked for
  bool closed_ = false;                         // guarded by mu_
  int offered_ = 0;                             // guarded by mu_
  std::set<std::string> settled_;               // request files answered or left alone
  std::set<std::string> answered_devices_;
  std::map<std::string, std::vector<std::string>> mine_of_;  // waiting request file -> our keys
  int waiting_ = 0;
  int waiting_tokens_ = 0;
};

// A keyring that hands each user key it adds to `agent` as well.
std::unique_ptr<Keyring> OfferingKeyring(Keyring& inner, PasswordAgent& agent);

}  // namespace hpcs

#endif  // HPCS_CORE_PASSWORD_AGENT_H_
