// When to try a request again, and how long to wait first.
//
// Retried: transport errors that can heal (connection refused or reset, DNS
// failure, timeout), 429 and 5xx except 501 (as IBM's Go client). Waits grow
// exponentially with jitter ("equal jitter": half fixed, half random) up to a
// cap; a Retry-After from the server is honoured (also capped) and spread. The caller's
// deadline bounds everything: a wait that would end past it is not started.
#ifndef HPCS_KP_RETRY_H_
#define HPCS_KP_RETRY_H_

#include <chrono>
#include <cstdint>
#include <optional>

#include "base/clock.h"
#include "kp/http.h"

namespace hpcs {

struct RetryPolicy {
  int max_retries = 4;  // < 0: keep trying until the deadline (boot)
  std::chrono::milliseconds base{250};
  std::chrono::milliseconds cap{30'000};
  // Random spread in every wait. Off only to measure what it is worth
  // (hpcs-unlock --no-jitter, bench/fleet.sh): without it a fleet retries in
  // lockstep.
  bool jitter = true;
};

bool IsRetryableStatus(long http_status);

// Delay before retry number `retry` (1 for the first retry). `random` is a
// uniformly distributed 32-bit value (tests pass fixed ones). A Retry-After
// is a floor, with up to as much again of random spread on top, so that the
// clients one overload turned away do not all come back in the same second.
std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int retry,
                                       std::optional<long> retry_after_s, uint32_t random);

// Where a request stands before its latest answer is judged.
struct AttemptState {
  int retries = 0;               // retries made so far
  bool bearer_token = false;     // it carried an IAM token (a KMS request)
  bool token_refreshed = false;  // a 401 has already fetched a new token for it
};

// What to do with an answer. Classifying it is pure: no I/O, no clock, no
// randomness of its own; the caller does what it says.
struct Verdict {
  enum class Next {
    kDone,          // a 2xx answer
    kRetry,         // send it again at retry_at
    kRefreshToken,  // 401 on a KMS request: get a new token, then send it again now
    kFail,          // final: result and gave_up say why
  };
  enum class GaveUp {
    kNotRetryable,   // an answer or transport error that trying again cannot fix
    kNoRetriesLeft,  // policy.max_retries used up
    kPastDeadline,   // the next attempt could not start before the deadline
  };
  Next next = Next::kDone;
  Clock::time_point retry_at{};
  int result = 0;  // kFail: -EPROTO (an HTTP answer), -ETIMEDOUT or -EHOSTUNREACH
  GaveUp gave_up = GaveUp::kNotRetryable;
};

Verdict ClassifyAnswer(const HttpResponse& answer, const AttemptState& state,
                       const RetryPolicy& policy, Clock::time_point now, Deadline deadline,
                       uint32_t random);

}  // namespace hpcs

#endif  // HPCS_KP_RETRY_H_
