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
#include "cmd/boot_status.h"
#include "core/keystore.h"
#include "core/luks2_metadata.h"
#include "core/password_agent.h"

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

// The user keys a device's LUKS2 header names (luks2-keyring tokens), read
// from the device itself: the static unlocker has no cryptsetup program.
int ReadDeviceKeyNames(const std::string& device, std::vector<std::string>* names,
                       std::string* err) {
  LuksHeader header;
  if (int r = ReadLuks2Header(device, &header, err); r < 0) return r;
  for (const LuksToken& t : header.tokens) {
    if (t.type == "luks2-keyring" && !t.key_description.empty()) {
      names->push_back(t.key_description);
    }
  }
  return 0;
}

long SecondsLeft(Deadline deadline) {
  auto left = deadline - Clock::now();
  return left.count() > 0 ? static_cast<long>(duration_cast<seconds>(left).count()) : 0;
}

std::string Keys(int n) { return std::to_string(n) + (n == 1 ? " key" : " keys"); }

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
        LogInfo("answered the passphrase request for '" + e.device + "' with key 'user/" + e.key +
                "'");
        status->Show("Key Protect: unlocked " + e.device);
        break;
      case AgentEvent::Kind::kNoAnswer:
        LogWarning("cannot answer the passphrase request for '" + e.device + "'" +
                   (e.key.empty() ? "" : " (key 'user/" + e.key + "')") + ": " + e.detail);
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
                         Keyring& keyring, std::function<int(Keyring&)> work) {
  // SIGTERM (systemd stopping the unit: switch-root, shutdown) is taken by
  // this thread alone, through a signalfd; the worker inherits the mask.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  Fd stop(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));

  const auto start = Clock::now();
  PasswordAgent agent(o.ask_dir, user_keys, ReadDeviceKeyNames);
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
  });
  BootStatus status;
  std::vector<AgentEvent> events;
  auto stopped = [&](bool ready) {
    if (agent.closed()) {  // the unwrapping is over: nothing is cut short
      if (!ready) Notify("READY=1");
      worker.join();
      return RaceResult{rc, false};
    }
    LogInfo("stopped by the service manager (the boot goes on) with " +
            Keys(total - recording.added()) + " not loaded");
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
  if (agent.closed()) {
    worker.join();
    return RaceResult{rc, false};
  }
  const int offered_at_ready = agent.offered();
  LogInfo("Key Protect: " + Keys(total - recording.added()) +
          " not loaded yet; trying behind the passphrase prompt for up to " +
          std::to_string(SecondsLeft(o.deadline)) + " s (you may type the passphrase)");

  // Behind the prompt: answer what we can, until the unwrapping is over and
  // nothing is left that we could answer.
  std::optional<Clock::time_point> leave;
  Clock::time_point closed_at = start;
  Clock::time_point next_status = Clock::now();
  for (;;) {
    // Closed before the scan: the scan has every key there will be.
    const bool closed = agent.closed();
    agent.Scan(&events);
    Report(events, &status);
    events.clear();
    auto now = Clock::now();
    if (closed && !leave) {
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
    auto wake = leave ? *leave : std::min(next_status, o.deadline + seconds(1));
    if (!agent.Wait(wake, stop.get())) return stopped(true);
  }
  worker.join();
  const long took = static_cast<long>(duration_cast<seconds>(closed_at - start).count());
  const int missing = total - recording.added();
  if (missing > 0) {
    LogWarning("Key Protect: gave up after " + std::to_string(took) + " s; " + Keys(missing) +
               " not loaded (the passphrase prompt stays)");
    status.Show("Key Protect: gave up; type the passphrase");
  } else {
    status.Show("Key Protect: every key unwrapped");
  }
  if (o.revoke_late_keys) RevokeLateKeys(o, recording);
  return RaceResult{rc, false};
}

}  // namespace hpcs
