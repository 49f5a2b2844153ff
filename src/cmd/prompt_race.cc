#include "cmd/prompt_race.h"

#include <signal.h>
#include <sys/signalfd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/log.h"
#include "base/sd_notify.h"
#include "base/strutil.h"
#include "cmd/boot_status.h"
#include "core/keystore.h"
#include "core/luks2_metadata.h"
#include "core/password_agent.h"
#include "core/token_volumes.h"

namespace hpcs {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Counts the keys added, and remembers those added after the unit said it
// was ready (RaceOptions::revoke_late_keys).
class RecordingKeyring final : public Keyring {
 public:
  explicit RecordingKeyring(Keyring& inner) : inner_(inner) {}
  int Add(KeyType type, const std::string& desc, std::span<const std::byte> data,
          unsigned timeout_s, long* serial, std::string* err) override {
    int r = inner_.Add(type, desc, data, timeout_s, serial, err);
    if (r < 0) return r;
    ++added_;
    std::lock_guard<std::mutex> lock(mu_);
    if (ready_) late_.emplace_back(type, desc);
    return r;
  }
  int Revoke(KeyType type, const std::string& desc, bool* found, std::string* err) override {
    return inner_.Revoke(type, desc, found, err);
  }
  bool Has(KeyType type, const std::string& desc) override { return inner_.Has(type, desc); }

  void MarkReady() {
    std::lock_guard<std::mutex> lock(mu_);
    ready_ = true;
  }
  int added() const { return added_; }
  std::vector<std::pair<KeyType, std::string>> late() {
    std::lock_guard<std::mutex> lock(mu_);
    return late_;
  }

 private:
  Keyring& inner_;
  std::atomic<int> added_{0};
  std::mutex mu_;
  bool ready_ = false;
  std::vector<std::pair<KeyType, std::string>> late_;
};

// What a device's LUKS2 header lets us answer it with (luks2-keyring tokens,
// hpcs tokens of `instance`), read from the device itself: the static
// unlocker has no cryptsetup program.
DeviceLookup ReadDeviceClaims(std::string instance) {
  return [instance](const std::string& device, DeviceClaims* claims, std::string* err) {
    LuksHeader header;
    if (int r = ReadLuks2Header(device, &header, err); r < 0) return r;
    std::vector<std::string> hpcs;
    for (const LuksToken& t : header.tokens) {
      if (t.type == "luks2-keyring" && !t.key_description.empty()) {
        claims->key_names.push_back(t.key_description);
      } else if (t.type == "hpcs") {
        hpcs.push_back(t.json);
      }
    }
    claims->uuid = header.uuid;
    if (!instance.empty()) claims->hpcs_tokens = OurHpcsTokens(hpcs, instance);
    return 0;
  };
}

long SecondsLeft(Deadline deadline) {
  auto left = deadline - Clock::now();
  return left.count() > 0 ? static_cast<long>(duration_cast<seconds>(left).count()) : 0;
}

std::string Keys(int n) { return std::to_string(n) + (n == 1 ? " key" : " keys"); }
std::string Volumes(size_t n) { return std::to_string(n) + (n == 1 ? " volume" : " volumes"); }

// "key 'user/DESC'", or the token job's name.
std::string AnswerLabel(const std::string& key) {
  if (key.starts_with("hpcs token of ")) return "its " + key;
  return "key 'user/" + key + "'";
}

// True when a service manager got it.
bool Notify(const std::string& state) {
  std::string err;
  int r = NotifyServiceManager(state, &err);
  if (r < 0) LogWarning(err);
  return r > 0;
}

void Report(const std::vector<AgentEvent>& events, BootStatus* status) {
  for (const AgentEvent& e : events) {
    switch (e.kind) {
      case AgentEvent::Kind::kAnswered:
        LogInfo("answered the passphrase request for '" + e.device + "' with " +
                AnswerLabel(e.key));
        status->Show("Key Protect: unlocked " + e.device);
        break;
      case AgentEvent::Kind::kNoAnswer:
        LogWarning("cannot answer the passphrase request for '" + e.device + "'" +
                   (e.key.empty() ? "" : " (" + AnswerLabel(e.key) + ")") + ": " + e.detail);
        break;
      case AgentEvent::Kind::kNotOurs:
        LogDebug("left the passphrase request for '" + e.device + "' alone: " + e.detail);
        break;
    }
  }
}

// The status line while we try behind the prompt.
std::string Trying(const PasswordAgent& agent, Deadline deadline) {
  std::string left = std::to_string(SecondsLeft(deadline)) + " s left";
  int w = agent.waiting();
  if (w == 0) return "Key Protect: trying, " + left + "; you may type the passphrase";
  return "Key Protect: unlocking " + std::to_string(w) + (w == 1 ? " volume, " : " volumes, ") +
         left + "; you may type the passphrase";
}

void RevokeLateKeys(const RaceOptions& o, RecordingKeyring& keyring) {
  for (const auto& [type, desc] : keyring.late()) {
    if (HasLingerMarker(o.key_dir, type, desc)) continue;
    bool found = false;
    std::string err;
    if (keyring.Revoke(type, desc, &found, &err) < 0) {
      LogWarning("cannot revoke '" + KeyLabel(type, desc) + "': " + err);
    } else if (found) {
      LogInfo("revoked '" + KeyLabel(type, desc) +
              "', unwrapped after the prompt was let go (the wipe service may have run)");
    }
  }
}

}  // namespace

RaceResult RaceThePrompt(const RaceOptions& o, const std::set<std::string>& user_keys, int total,
                         Keyring& keyring, std::function<int(Keyring&)> work,
                         ServeTokens serve_tokens) {
  // SIGTERM (systemd stopping the unit: switch-root, shutdown) is taken by
  // this thread alone, through a signalfd; the worker inherits the mask.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  Fd stop(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));

  const auto start = Clock::now();
  const bool tokens = serve_tokens && !o.token_instance.empty();
  TokenJobs jobs;
  PasswordAgent agent(o.ask_dir, user_keys, ReadDeviceClaims(tokens ? o.token_instance : ""),
                      tokens ? &jobs : nullptr);
  std::string err;
  if (agent.Open(&err) < 0) {
    LogWarning(err + ": passphrase prompts get no answer from hpcs-unlock, only the keyring");
  }
  RecordingKeyring recording(keyring);
  std::unique_ptr<Keyring> offering = OfferingKeyring(recording, agent);
  std::atomic<int> rc{0};
  std::thread worker([&] {
    rc = work(*offering);
    agent.Close();
    if (tokens) serve_tokens(jobs, agent);
  });
  // The volumes with an hpcs token of ours that are not open yet (they may
  // still ask), looked at no more than once a second.
  std::vector<std::string> pending;
  Clock::time_point pending_at{};
  auto pending_volumes = [&](Clock::time_point now) -> size_t {
    if (!tokens || now >= o.deadline) return 0;
    if (now - pending_at >= seconds(1)) {
      pending = PendingTokenVolumes(o.boot_volumes, o.token_instance, o.sys);
      pending_at = now;
    }
    return pending.size();
  };
  // Whether the thread has nothing more to do for us: its keys are in and
  // no token is being unwrapped or waited for.
  auto idle = [&](Clock::time_point now) {
    const bool none_pending = pending_volumes(now) == 0;  // looked at first: it is logged
    return none_pending && agent.closed() && !jobs.busy() && agent.waiting_for_tokens() == 0;
  };
  BootStatus status;
  std::vector<AgentEvent> events;
  auto finish = [&] {
    jobs.Close();
    worker.join();
    return RaceResult{rc, false};
  };
  auto stopped = [&](bool ready) {
    jobs.Close();
    if (agent.closed() && !jobs.busy()) {  // nothing is cut short
      if (!ready) Notify("READY=1");
      worker.join();
      return RaceResult{rc, false};
    }
    LogInfo("stopped by the service manager (the boot goes on) with " +
            Keys(total - recording.added()) + " not loaded" +
            (pending.empty() ? ""
                             : " and " + Volumes(pending.size()) + " with an hpcs token not open"));
    if (!ready) Notify("READY=1");
    worker.detach();  // the caller ends the process
    return RaceResult{0, true};
  };

  // Until every key is settled, or the grace period is over.
  const auto grace_end = start + o.grace;
  while (!agent.closed() && Clock::now() < grace_end) {
    if (!agent.Wait(grace_end, stop.get())) return stopped(false);
    agent.Scan(&events);
  }
  agent.Scan(&events);  // with every key that came before Close
  // Run by hand (no service manager), no systemd-cryptsetup waits on us.
  const bool managed = Notify("READY=1");
  recording.MarkReady();
  Report(events, &status);
  events.clear();
  if (idle(Clock::now())) return finish();
  const int offered_at_ready = agent.offered();
  if (total > recording.added()) {
    LogInfo("Key Protect: " + Keys(total - recording.added()) +
            " not loaded yet; trying behind the passphrase prompt for up to " +
            std::to_string(SecondsLeft(o.deadline)) + " s (you may type the passphrase)");
  }
  if (!pending.empty()) {
    LogInfo("Key Protect: " + Volumes(pending.size()) +
            " with an hpcs token not open yet; answering their passphrase requests for up to " +
            std::to_string(SecondsLeft(o.deadline)) + " s");
  }

  // Behind the prompt: answer what we can, until the unwrapping is over and
  // nothing is left that we could answer.
  std::optional<Clock::time_point> leave;
  Clock::time_point closed_at = start;
  Clock::time_point next_status = Clock::now();
  for (;;) {
    // Idle before the scan: the scan has every key there will be.
    const bool done = idle(Clock::now());
    agent.Scan(&events);
    Report(events, &status);
    events.clear();
    auto now = Clock::now();
    if (done && !leave) {
      closed_at = now;
      // Keys that came after the prompt was let go: a request may be on
      // its way from a systemd-cryptsetup that tried the keyring too early.
      leave = managed && agent.offered() > offered_at_ready ? now + o.linger : now;
    }
    if (leave && now >= *leave) break;
    if (!leave && now >= next_status) {
      status.Show(Trying(agent, o.deadline));
      next_status = now + seconds(5);
    }
    auto wake = leave ? *leave
                      : std::min({next_status, o.deadline + seconds(1),
                                  tokens ? now + seconds(1) : next_status});
    if (!agent.Wait(wake, stop.get())) return stopped(true);
  }
  RaceResult result = finish();
  const long took = static_cast<long>(duration_cast<seconds>(closed_at - start).count());
  const int missing = total - recording.added();
  std::vector<std::string> left =
      tokens ? PendingTokenVolumes(o.boot_volumes, o.token_instance, o.sys) : pending;
  if (missing > 0) {
    LogWarning("Key Protect: gave up after " + std::to_string(took) + " s; " + Keys(missing) +
               " not loaded (the passphrase prompt stays)");
  }
  if (!left.empty()) {
    LogWarning("Key Protect: gave up after " + std::to_string(took) + " s; " +
               Volumes(left.size()) + " with an hpcs token not open: " + Join(left, ", ") +
               " (the passphrase prompt stays)");
  }
  if (missing > 0 || !left.empty()) {
    status.Show("Key Protect: gave up; type the passphrase");
  } else {
    status.Show("Key Protect: every key unwrapped");
  }
  if (o.revoke_late_keys) RevokeLateKeys(o, recording);
  return result;
}

}  // namespace hpcs
