// Client of the Key Protect / HPCS REST API (kp-api.md): the IAM token, and
// key operations run as batches of calls that are all in flight at once (a
// sliding window over the transport), each retried on its own schedule, all
// bounded by one deadline. Which answer means what is retry.h's
// ClassifyAnswer; this file builds the requests and acts on its verdicts.
#ifndef HPCS_KP_KP_CLIENT_H_
#define HPCS_KP_KP_CLIENT_H_

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/secret.h"
#include "kp/http.h"
#include "kp/kp_answers.h"
#include "kp/kp_call.h"
#include "kp/retry.h"
#include "kp/throttle.h"
#include "kp/token_source.h"

namespace hpcs {

struct KpSettings {
  std::string endpoint_url;      // https://<region>.kms.cloud.ibm.com, no trailing '/'
  std::string iam_endpoint_url;  // https://iam.cloud.ibm.com
  std::string instance_id;       // Bluemix-Instance
};

class KpClient {
 public:
  // `time` is the clock for backoff waits and token lifetimes (tests pass a
  // fake one); `deadline` bounds every call.
  KpClient(KpSettings settings, Secret api_key, HttpTransport* http, RetryPolicy retry,
           Deadline deadline, TimeSource* time = &SystemTime());
  // The same with the tokens from `tokens` (an instance identity:
  // vpc_identity.h) instead of an API key.
  KpClient(KpSettings settings, std::unique_ptr<TokenSource> tokens, HttpTransport* http,
           RetryPolicy retry, Deadline deadline, TimeSource* time = &SystemTime());
  ~KpClient();

  // Runs all calls concurrently, each retried on its own schedule; at most
  // max_parallel requests are in flight, and a finished one makes room for
  // the next at once. An IAM token is fetched when a request needs one
  // (first use, 80% of its lifetime gone, or a 401). on_done, if given, is
  // called once per call as soon as its outcome is final.
  void Run(std::span<KpCall* const> calls, const std::function<void(KpCall&)>& on_done = {});

  int List(std::vector<KeyInfo>* out, std::string* err);
  // payload == nullptr: the service generates the key material.
  int Create(std::string_view name, bool root_key, const Secret* payload, std::string* id,
             std::string* err);
  // The key's metadata as pretty JSON, without any key material.
  int Get(std::string_view id, std::string* json, std::string* err);
  int Delete(std::string_view id, std::string* err);
  int Wrap(std::string_view crk, const Secret& plaintext, std::string* ciphertext,
           std::string* err);
  int Unwrap(std::string_view crk, std::string_view ciphertext, Secret* plaintext,
             std::string* err);
  // The same bound to additional authenticated data (Key Protect's "aad",
  // sent only when not empty: an unwrap must name the AAD the wrap named).
  // *key_version (may be nullptr): keyVersion.id of the answer, "" when it
  // has none.
  int Wrap(std::string_view crk, const Secret& plaintext, std::span<const std::string> aad,
           std::string* ciphertext, std::string* key_version, std::string* err);
  int Unwrap(std::string_view crk, std::string_view ciphertext, std::span<const std::string> aad,
             Secret* plaintext, std::string* key_version, std::string* err);

  // Building blocks for batches of unwraps.
  static KpCall MakeUnwrapCall(std::string_view crk, std::string_view ciphertext,
                               std::span<const std::string> aad = {});
  static int ParseUnwrap(const KpCall& call, Secret* plaintext, std::string* err,
                         std::string* key_version = nullptr);

  // At most this many requests in flight at once (0: no limit). An
  // overloaded service (429) makes the client send fewer for a while:
  // see throttle.h.
  void set_max_parallel(size_t n) { kms_throttle_ = HostThrottle(n); }
  // Whether the KMS connection is opened while the IAM token is on its way
  // (HttpTransport::Preconnect); on by default. Off for benchmarks only.
  void set_preconnect(bool on) { preconnect_ = on; }

  // A bearer token got elsewhere (the initramfs's, handed on through the
  // kernel keyring: core/token_handoff.h) in place of the API key: used until
  // valid_until; a request that needs a new one after that (or after a 401)
  // fails with `no_refresh`, which says why there is no API key to get one.
  void UseToken(const Secret& token, Clock::time_point valid_until, std::string no_refresh);
  // The token in use and when it expires; false when there is none.
  bool CurrentToken(Secret* token, Clock::time_point* expires_at) const;

  // Counters for diagnostics and tests: tokens asked for (each may take
  // several requests: token_source.h).
  int token_requests() const { return token_requests_; }

 private:
  struct Slot;
  using OnDone = std::function<void(KpCall&)>;

  // What one pass over the slots found.
  struct Pass {
    Clock::time_point wake = Clock::time_point::max();  // when the next one falls due
    bool open = false;  // a KMS request waits or runs, or the token request runs
  };

  // The loop of Run: starts what is due, waits, hands each answer on.
  void Drive(std::vector<Slot>& slots, const OnDone& on_done);
  // Starts every waiting call that is due, as far as the window and the
  // token allow; fails those that can no longer succeed.
  Pass StartDue(std::vector<Slot>& slots, Clock::time_point now, const OnDone& on_done);
  void FailWaiting(std::vector<Slot>& slots, const OnDone& on_done);
  // The HTTP request for a call's next attempt.
  HttpRequest PrepareRequest(const Slot& s) const;
  void StartAttempt(Slot& s, size_t tag);
  void StartTokenRequest(Slot& token, Clock::time_point now);
  // Acts on ClassifyAnswer's verdict: done, retry at T, new token, or fail.
  void OnAnswer(Slot& s, Clock::time_point now, const OnDone& on_done);
  void LogAnswer(const Slot& s) const;
  void Finish(Slot& s, int result, std::string error, const OnDone& on_done);
  void FinishPastDeadline(Slot& s, const OnDone& on_done);
  // Takes the token from a finished IAM request, or records why there is
  // none; or starts the next step of getting one.
  void AcceptToken(Slot& token);
  void StartTokenStep(Slot& token, Clock::time_point now);
  bool TokenFresh(Clock::time_point now) const;
  int RunOne(KpCall* call, std::string* err);

  KpSettings settings_;
  std::unique_ptr<TokenSource> tokens_;
  int token_step_ = 0;  // of the token request under way
  HttpTransport* http_;
  RetryPolicy retry_;
  Deadline deadline_;
  TimeSource* time_;
  Secret auth_header_;  // "Authorization: Bearer <token>"
  Clock::time_point token_refresh_at_{};
  Clock::time_point token_expires_at_{};
  std::string no_refresh_;    // set: there is no API key to get a token with
  int token_generation_ = 0;  // counts the tokens received
  int token_requests_ = 0;
  std::string auth_error_;  // why this run has no token (sticky for the run)
  bool auth_unreachable_ = false;
  bool preconnect_ = true;
  bool preconnected_ = false;  // a connection to the KMS was opened ahead
  HostThrottle kms_throttle_;  // the key endpoints' share of the service
  size_t kms_running_ = 0;     // KMS requests in flight
};

}  // namespace hpcs

#endif  // HPCS_KP_KP_CLIENT_H_
