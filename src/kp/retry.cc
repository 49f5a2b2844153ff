#include "kp/retry.h"

#include <algorithm>
#include <cerrno>

namespace hpcs {

bool IsRetryableStatus(long s) { return s == 429 || (s >= 500 && s <= 599 && s != 501); }

std::chrono::milliseconds BackoffDelay(const RetryPolicy& p, int retry,
                                       std::optional<long> retry_after_s, uint32_t random) {
  using std::chrono::milliseconds;
  int shift = std::clamp(retry - 1, 0, 30);
  long long ceiling = std::min<long long>(p.base.count() << shift, p.cap.count());
  // Equal jitter: [ceiling/2, ceiling]; without jitter, the ceiling.
  long long half = ceiling / 2;
  long long delay =
      !p.jitter ? ceiling : half + (half > 0 ? static_cast<long long>(random % (half + 1)) : 0);
  if (retry_after_s) {
    // Retry-After is a floor: [after, 2 * after] with jitter.
    long long after = std::clamp<long long>(*retry_after_s, 0, p.cap.count() / 1000) * 1000;
    if (p.jitter) after += static_cast<long long>((random >> 7) % (after + 1));
    delay = std::max(delay, after);
  }
  return milliseconds(std::min<long long>(delay, p.cap.count()));
}

Verdict ClassifyAnswer(const HttpResponse& r, const AttemptState& s, const RetryPolicy& p,
                       Clock::time_point now, Deadline deadline, uint32_t random) {
  using Next = Verdict::Next;
  using GaveUp = Verdict::GaveUp;
  Verdict v;
  if (r.status >= 200 && r.status < 300) return v;
  if (r.status == 401 && s.bearer_token && !s.token_refreshed) {
    // The token expired or was revoked: fetch a new one, once.
    v.next = Next::kRefreshToken;
    v.retry_at = now;
    return v;
  }
  bool transport = r.status == 0;
  bool retryable = transport ? r.transport_retryable : IsRetryableStatus(r.status);
  v.next = Next::kFail;
  v.result = !transport || r.too_large ? -EPROTO : r.timed_out ? -ETIMEDOUT : -EHOSTUNREACH;
  if (!retryable) return v;
  if (p.max_retries >= 0 && s.retries >= p.max_retries) {
    v.gave_up = GaveUp::kNoRetriesLeft;
    return v;
  }
  v.retry_at = now + BackoffDelay(p, s.retries + 1, r.retry_after_s, random);
  if (v.retry_at >= deadline) {
    v.result = transport ? -ETIMEDOUT : -EPROTO;
    v.gave_up = GaveUp::kPastDeadline;
    return v;
  }
  v.next = Next::kRetry;
  return v;
}

}  // namespace hpcs
