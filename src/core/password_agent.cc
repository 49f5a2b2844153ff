#include "core/password_agent.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>

#include "base/error.h"
#include "core/ask_password.h"

namespace hpcs {

namespace {

uint64_t MonotonicNowUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// What makes two paths the same device: its device number, or for an image
// file (tests) its inode; the path itself when it cannot be looked at.
std::string DeviceIdentity(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) < 0) return "path:" + path;
  if (S_ISBLK(st.st_mode)) return "blk:" + std::to_string(st.st_rdev);
  return "ino:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

class Offering final : public Keyring {
 public:
  Offering(Keyring& inner, PasswordAgent& agent) : inner_(inner), agent_(agent) {}
  int Add(KeyType type, const std::string& desc, std::span<const std::byte> data,
          unsigned timeout_s, long* serial, std::string* err) override {
    int r = inner_.Add(type, desc, data, timeout_s, serial, err);
    if (r >= 0 && type == KeyType::kUser) agent_.Offer(desc, Secret(data.data(), data.size()));
    return r;
  }
  int Revoke(KeyType type, const std::string& desc, bool* found, std::string* err) override {
    return inner_.Revoke(type, desc, found, err);
  }
  bool Has(KeyType type, const std::string& desc) override { return inner_.Has(type, desc); }

 private:
  Keyring& inner_;
  PasswordAgent& agent_;
};

}  // namespace

PasswordAgent::PasswordAgent(std::string dir, std::set<std::string> ours, DeviceLookup lookup,
                             TokenJobs* jobs)
    : dir_(std::move(dir)), ours_(std::move(ours)), lookup_(std::move(lookup)), jobs_(jobs) {}

PasswordAgent::~PasswordAgent() = default;

int PasswordAgent::Open(std::string* err) {
  inotify_ = Fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (inotify_.get() < 0) return FailErrno(err, errno, "cannot watch '" + dir_ + "' (inotify)");
  event_ = Fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (event_.get() < 0) return FailErrno(err, errno, "cannot make an eventfd");
  Watch();
  return 0;
}

// The directory appears with the first request (or its agents' .path units).
void PasswordAgent::Watch() {
  if (watching_ || inotify_.get() < 0) return;
  watching_ = inotify_add_watch(inotify_.get(), dir_.c_str(),
                                IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                    IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) >= 0;
}

void PasswordAgent::Offer(const std::string& desc, Secret passphrase) {
  Store(desc, std::move(passphrase), true);
}

void PasswordAgent::OfferTokenAnswer(const std::string& name, Secret passphrase) {
  Store(name, std::move(passphrase), false);
}

void PasswordAgent::Store(const std::string& name, Secret passphrase, bool count) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    keys_[name] = std::move(passphrase);
    if (count) ++offered_;
  }
  uint64_t one = 1;
  if (event_.get() >= 0 && write(event_.get(), &one, sizeof one) < 0) {
    // Full counter: a wake-up is pending anyway.
  }
}

void PasswordAgent::Refuse(const std::string& name, std::string why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    refused_[name] = std::move(why);
  }
  uint64_t one = 1;
  if (event_.get() >= 0 && write(event_.get(), &one, sizeof one) < 0) {
    // As in Offer.
  }
}

void PasswordAgent::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  uint64_t one = 1;
  if (event_.get() >= 0 && write(event_.get(), &one, sizeof one) < 0) {
    // As in Offer.
  }
}

bool PasswordAgent::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

int PasswordAgent::offered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return offered_;
}

void PasswordAgent::Scan(std::vector<AgentEvent>* events) {
  Watch();
  std::vector<AskRequest> requests;
  std::string err;
  waiting_ = waiting_tokens_ = 0;
  if (ReadAskRequests(dir_, &requests, nullptr, &err) < 0) return;
  // Forget settled requests that are gone, so that the set stays small.
  auto gone = [&](const std::string& f) {
    return std::none_of(requests.begin(), requests.end(),
                        [&](const AskRequest& r) { return r.file == f; });
  };
  std::erase_if(settled_, gone);
  std::erase_if(mine_of_, [&](const auto& entry) { return gone(entry.first); });
  uint64_t now = MonotonicNowUs();
  for (const AskRequest& r : requests) {
    if (settled_.count(r.file)) continue;
    std::optional<std::string> device = CryptsetupDevice(r);
    if (!device || !AskRequestLive(r, now)) {
      settled_.insert(r.file);
      continue;
    }
    std::string why;
    // The header is read once per request, not at every scan while it waits.
    auto cached = mine_of_.find(r.file);
    if (cached != mine_of_.end()) {
      if (!Answer(r, *device, cached->second, events)) ++waiting_;
      continue;
    }
    DeviceClaims claims;
    if (int n = lookup_(*device, &claims, &why); n < 0) {
      settled_.insert(r.file);
      // Not LUKS2 is not ours; a header we could not read may well be.
      auto kind = n == -EMEDIUMTYPE ? AgentEvent::Kind::kNotOurs : AgentEvent::Kind::kNoAnswer;
      events->push_back({kind, *device, "", why});
      continue;
    }
    std::vector<std::string> mine;
    for (const auto& n : claims.key_names) {
      if (ours_.count(n)) mine.push_back(n);
    }
    // Its hpcs tokens come after our keys: a key we unwrap anyway is quicker.
    if (jobs_ && !claims.hpcs_tokens.empty() && !claims.uuid.empty()) {
      std::string name = TokenAnswerName(claims.uuid);
      mine.push_back(name);
      if (submitted_.insert(name).second) {
        jobs_->Submit({name, claims.uuid, *device, claims.hpcs_tokens});
      }
    }
    if (mine.empty()) {
      settled_.insert(r.file);
      events->push_back({AgentEvent::Kind::kNotOurs, *device, "",
                         "its LUKS2 header has no luks2-keyring token for a key of ours and no "
                         "hpcs token of our instance"});
      continue;
    }
    mine_of_[r.file] = mine;
    if (!Answer(r, *device, mine, events)) ++waiting_;
  }
}

bool PasswordAgent::Answer(const AskRequest& r, const std::string& device,
                           const std::vector<std::string>& mine, std::vector<AgentEvent>* events) {
  auto settle = [&](AgentEvent e) {
    settled_.insert(r.file);
    mine_of_.erase(r.file);
    events->push_back(std::move(e));
    return true;
  };
  std::string identity = DeviceIdentity(device);
  if (answered_devices_.count(identity)) {
    return settle({AgentEvent::Kind::kNoAnswer, device, mine.front(),
                   "it asks again after our answer: left to the person at the console"});
  }
  std::unique_lock<std::mutex> lock(mu_);
  auto key = std::find_if(mine.begin(), mine.end(),
                          [&](const std::string& n) { return keys_.count(n) != 0; });
  if (key == mine.end()) {
    // Its key has not come yet; of a token job that failed, it never will.
    auto token = std::find_if(mine.begin(), mine.end(),
                              [&](const std::string& n) { return submitted_.count(n) != 0; });
    if (token == mine.end()) return false;
    if (auto f = refused_.find(*token); f != refused_.end()) {
      std::string why = f->second;
      lock.unlock();
      if (mine.size() == 1) return settle({AgentEvent::Kind::kNoAnswer, device, *token, why});
      return false;  // one of our keys may still come
    }
    ++waiting_tokens_;
    return false;
  }
  std::string why;
  int a = AnswerAskRequest(r, keys_.at(*key), &why);
  lock.unlock();
  if (a < 0) return settle({AgentEvent::Kind::kNoAnswer, device, *key, why});
  answered_devices_.insert(identity);
  return settle({AgentEvent::Kind::kAnswered, device, *key, ""});
}

void PasswordAgent::Drain() {
  alignas(inotify_event) char buf[4096];
  // Which file changed does not matter: Scan looks at them all.
  while (inotify_.get() >= 0 && read(inotify_.get(), buf, sizeof buf) > 0) {
  }
  // A directory that went away (IN_IGNORED) is watched again once it is back.
  struct stat st {};
  if (watching_ && stat(dir_.c_str(), &st) < 0) watching_ = false;
  uint64_t n = 0;
  if (event_.get() >= 0 && read(event_.get(), &n, sizeof n) < 0) {
    // Nothing pending.
  }
}

bool PasswordAgent::Wait(Clock::time_point until, int stop_fd) {
  Watch();
  auto now = Clock::now();
  auto left = until > now ? std::chrono::ceil<std::chrono::milliseconds>(until - now)
                          : std::chrono::milliseconds(0);
  // Without a watch yet, look again for the directory twice a second.
  if (!watching_) left = std::min(left, std::chrono::milliseconds(500));
  left = std::min(left, std::chrono::milliseconds(60000));
  pollfd fds[3] = {{inotify_.get(), POLLIN, 0}, {event_.get(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
  int r = poll(fds, stop_fd >= 0 ? 3 : 2, static_cast<int>(left.count()));
  if (r > 0 && stop_fd >= 0 && (fds[2].revents & POLLIN)) return false;
  Drain();
  return true;
}

std::unique_ptr<Keyring> OfferingKeyring(Keyring& inner, PasswordAgent& agent) {
  return std::make_unique<Offering>(inner, agent);
}

}  // namespace hpcs
