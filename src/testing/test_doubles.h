// Test doubles for the interfaces of the core library, shared by every unit
// test (ninja's src/test.h): a fake clock, a scripted HTTP transport that runs
// on it, an in-memory kernel keyring, a TPM that unseals what it is told, and
// a scratch directory, another process holding a lock. (The TPM stacks
// themselves are tested on swtpm; their helpers are in tpm_testing.h.)
#ifndef HPCS_TESTING_TEST_DOUBLES_H_
#define HPCS_TESTING_TEST_DOUBLES_H_

#include <fcntl.h>
#include <mbedtls/md.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "core/keyring.h"
#include "kp/http.h"
#include "tpm/tpm.h"

namespace hpcs {

// Starts at an arbitrary point and moves only when something sleeps.
class FakeClock : public TimeSource {
 public:
  Clock::time_point Now() override { return now_; }
  void SleepUntil(Clock::time_point t) override {
    if (t > now_) {
      slept += t - now_;
      now_ = t;
    }
  }
  void Advance(Clock::duration d) { now_ += d; }
  Clock::duration slept{};

 private:
  Clock::time_point now_ = Clock::time_point() + std::chrono::hours(1000);
};

// A transport whose answers come from a function of the request. Each answer
// arrives `latency` after its request on the fake clock (0 by default), or
// ends with timed_out at its deadline if that comes first.
class ScriptedTransport : public HttpTransport {
 public:
  using Handler = std::function<void(const HttpRequest&, HttpResponse*)>;
  ScriptedTransport(FakeClock* clock, Handler handler)
      : clock_(clock), handler_(std::move(handler)) {}

  // Per request; default: no latency.
  std::function<Clock::duration(const HttpRequest&)> latency;

  void Start(HttpExchange* x, Deadline deadline) override {
    Sent sent;
    sent.method = x->request.method;
    sent.url = x->request.url;
    sent.metadata_service = x->request.metadata_service;
    sent.at = clock_->Now();
    sent.headers = x->request.headers;
    sent.auth.assign(x->request.auth_header.view());
    if (!sent.auth.empty() && sent.auth.back() == '\0') sent.auth.pop_back();
    sent.body.assign(x->request.body.view());
    sent_.push_back(std::move(sent));
    x->response = HttpResponse();
    handler_(x->request, &x->response);
    Clock::time_point ready = clock_->Now() + (latency ? latency(x->request) : Clock::duration());
    if (ready > deadline) {
      x->response = HttpResponse();
      x->response.transport_error = "Operation timed out";
      x->response.transport_retryable = true;
      x->response.timed_out = true;
      ready = deadline;
    }
    running_.push_back({ready, x});
    max_in_flight = std::max(max_in_flight, running_.size());
  }

  void Wait(Clock::time_point wake, std::vector<HttpExchange*>* done) override {
    if (running_.empty()) return;
    Clock::time_point first = running_.front().first;
    for (const auto& r : running_) first = std::min(first, r.first);
    clock_->SleepUntil(std::min(first, wake));
    // In the order they were started, all that are ready by now.
    std::erase_if(running_, [&](const auto& r) {
      if (r.first > clock_->Now()) return false;
      done->push_back(r.second);
      return true;
    });
  }

  size_t Running() const override { return running_.size(); }

  // Recorded, with the time it was asked for; nothing is connected.
  void Preconnect(const std::string& url, Deadline) override {
    preconnects.push_back({url, clock_->Now()});
  }
  struct Preconnected {
    std::string url;
    Clock::time_point at;
  };
  std::vector<Preconnected> preconnects;

  // What was sent, in order.
  struct Sent {
    std::string method;
    std::string url;
    bool metadata_service = false;
    Clock::time_point at;
    std::vector<std::string> headers;
    std::string auth;  // the Authorization header, if any
    std::string body;
  };
  const std::vector<Sent>& sent() const { return sent_; }
  size_t max_in_flight = 0;

 private:
  FakeClock* clock_;
  Handler handler_;
  std::vector<std::pair<Clock::time_point, HttpExchange*>> running_;
  std::vector<Sent> sent_;
};

// The user keyring @u in memory: (type, description) -> payload.
class FakeKeyring : public Keyring {
 public:
  int Add(KeyType type, const std::string& desc, std::span<const std::byte> data,
          unsigned timeout_s, long* serial, std::string* err) override {
    if (fail_add.count(desc)) {
      if (err) *err = "add_key(" + std::string(KeyTypeName(type)) + ", '" + desc + "') failed";
      return fail_add.at(desc);
    }
    keys[{type, desc}].assign(reinterpret_cast<const char*>(data.data()), data.size());
    timeouts[{type, desc}] = timeout_s;
    if (serial) *serial = ++last_serial_;
    return 0;
  }
  int Revoke(KeyType type, const std::string& desc, bool* found, std::string*) override {
    *found = keys.erase({type, desc}) > 0;
    if (*found) revoked.push_back(desc);
    return 0;
  }
  bool Has(KeyType type, const std::string& desc) override { return keys.count({type, desc}) > 0; }

  std::map<std::pair<KeyType, std::string>, std::string> keys;
  std::map<std::pair<KeyType, std::string>, unsigned> timeouts;  // as Add got them
  std::vector<std::string> revoked;
  std::map<std::string, int> fail_add;  // description -> error to return

 private:
  long last_serial_ = 0;
};

// A TPM that unseals what the test says: the key, or an error; or hangs
// until released (a tcsd or TPM that never answers).
class FakeTpm : public Tpm {
 public:
  explicit FakeTpm(TpmKind kind) : kind_(kind) {}
  TpmKind kind() const override { return kind_; }
  int Unseal(std::string_view blob_text, Secret* out, std::string* err) override {
    std::unique_lock<std::mutex> lock(mu_);
    blobs_seen.emplace_back(blob_text);
    cv_.wait(lock, [&] { return !hang; });
    if (result < 0) {
      if (err) *err = error;
      return result;
    }
    *out = Secret::FromString(key);
    return 0;
  }
  int Seal(const Secret& data, std::span<const unsigned>, std::string* blob_text,
           std::string*) override {
    *blob_text = "sealed:" + std::string(data.view());
    return 0;
  }
  // PCRs start at zero, as after a reset; an extend is H(old || digest) in
  // the kind's bank (SHA-1 for TPM 1.2, SHA-256 for 2.0).
  int ReadPcr(unsigned pcr, std::vector<uint8_t>* value, std::string* err) override {
    if (pcr_result < 0) {
      if (err) *err = error;
      return pcr_result;
    }
    auto it = pcrs.find(pcr);
    *value = it != pcrs.end() ? it->second : std::vector<uint8_t>(PcrSize(), 0);
    return 0;
  }
  int ExtendPcr(unsigned pcr, std::span<const uint8_t> digest, std::string* err) override {
    std::vector<uint8_t> old;
    if (int r = ReadPcr(pcr, &old, err); r < 0) return r;
    if (digest.size() != PcrSize()) return -EINVAL;
    old.insert(old.end(), digest.begin(), digest.end());
    std::vector<uint8_t> out(PcrSize());
    mbedtls_md(
        mbedtls_md_info_from_type(kind_ == TpmKind::kTpm1 ? MBEDTLS_MD_SHA1 : MBEDTLS_MD_SHA256),
        old.data(), old.size(), out.data());
    pcrs[pcr] = out;
    ++extends;
    return 0;
  }
  size_t PcrSize() const { return kind_ == TpmKind::kTpm1 ? 20 : 32; }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    hang = false;
    cv_.notify_all();
  }

  std::map<unsigned, std::vector<uint8_t>> pcrs;
  int pcr_result = 0;  // < 0: ReadPcr and ExtendPcr fail with this and `error`
  int extends = 0;
  std::string key = "fake-tpm-api-key";
  int result = 0;  // < 0: Unseal fails with this and `error`
  std::string error;
  bool hang = false;
  std::vector<std::string> blobs_seen;

 private:
  TpmKind kind_;
  std::mutex mu_;
  std::condition_variable cv_;
};

// A fresh directory under $TMPDIR (or /tmp), removed with all it holds.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = std::filesystem::temp_directory_path() / "hpcs-test-XXXXXX";
    if (!mkdtemp(tmpl.data())) abort();
    path_ = tmpl;
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes `rel` (parent directories made) with the given mode; its path.
  std::string Write(const std::string& rel, std::string_view content, mode_t mode = 0600) {
    std::filesystem::path p = std::filesystem::path(path_) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    chmod(p.c_str(), mode);
    return p;
  }
  std::string Mkdir(const std::string& rel) {
    std::filesystem::path p = std::filesystem::path(path_) / rel;
    std::filesystem::create_directories(p);
    return p;
  }

 private:
  std::string path_;
};

// Another writer: a child process that holds an exclusive flock(2) on
// `path` (made if missing), as flock(1) or a second hpcs-for-luks would,
// until Release() or the end of the scope. The constructor returns once the
// lock is held; pid() is the child's.
class FlockHolder {
 public:
  explicit FlockHolder(const std::string& path) {
    int ready[2];
    if (pipe(ready) != 0) abort();
    pid_ = fork();
    if (pid_ < 0) abort();
    if (pid_ == 0) {
      int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0 || flock(fd, LOCK_EX) != 0) _exit(1);
      (void)!write(ready[1], "x", 1);
      for (;;) pause();
    }
    close(ready[1]);
    char c;
    if (read(ready[0], &c, 1) != 1) abort();
    close(ready[0]);
  }
  ~FlockHolder() { Release(); }
  FlockHolder(const FlockHolder&) = delete;
  FlockHolder& operator=(const FlockHolder&) = delete;

  pid_t pid() const { return pid_; }
  void Release() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace hpcs

#endif  // HPCS_TESTING_TEST_DOUBLES_H_
