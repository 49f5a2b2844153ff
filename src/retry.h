// When to try a request again, and how long to wait first.
//
// Retried: transport errors that can heal (connection refused or reset, DNS
// failure, timeout), 429 and 5xx except 501 (as IBM's Go client). Waits grow
// exponentially with jitter ("equal jitter": half fixed, half random) up to a
// cap; a Retry-After from the server is honoured (also capped). The caller's
// deadline bounds everything: a wait that would end past it is not started.
#ifndef HPCS_RETRY_H_
#define HPCS_RETRY_H_

#include <chrono>
#include <cstdint>
#include <optional>

namespace hpcs {

struct RetryPolicy {
  int max_retries = 4;  // < 0: keep trying until the deadline (boot)
  std::chrono::milliseconds base{250};
  std::chrono::milliseconds cap{30'000};
};

bool IsRetryableStatus(long http_status);

// Delay before retry number `retry` (1 for the first retry). `random` is a
// uniformly distributed 32-bit value (tests pass fixed ones).
std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int retry,
                                       std::optional<long> retry_after_s, uint32_t random);

}  // namespace hpcs

#endif  // HPCS_RETRY_H_
