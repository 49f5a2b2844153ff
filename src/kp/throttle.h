// A host's share of a rate-limited service.
//
// When Key Protect or IAM answers 429, the instance is over its rate limit:
// often because a whole fleet booted at once. (A 503 says the service is in
// trouble, not that we send too much: it is retried per request, retry.h.) A client that has many
// requests in flight must not answer with as many retries at the same moment, or the fleet keeps
// the service saturated and most of its requests are refused. So the whole host backs off, not each
// request on its own: after an overload answer no new request starts until the hold is over (at
// least the Retry-After the service gave, plus a random spread that doubles with every overload in
// a row and widens with the refusals of the burst), and then only one request is in flight, one
// more per round of successes (TCP's congestion avoidance, applied to a rate limit). The host
// remembers the spread of its last overload and halves that memory with each round of successes:
// the next overload spreads at least that wide, so a host whose whole burst was refused does not
// come back at short intervals once a few of its requests got through. Answers to requests that
// were already in flight at an overload count as part of it: no second overload, no growth.
//
// Pure: the caller passes the time and the random value.
#ifndef HPCS_KP_THROTTLE_H_
#define HPCS_KP_THROTTLE_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "base/clock.h"
#include "kp/retry.h"

namespace hpcs {

class HostThrottle {
 public:
  // max_window: at most this many requests in flight (0: no limit).
  explicit HostThrottle(size_t max_window = 0) : max_window_(max_window), window_(max_window) {}

  // May another request start at `now`, with `running` already in flight?
  bool MayStart(Clock::time_point now, size_t running) const;
  // No request starts before this (the epoch when there is no hold).
  Clock::time_point hold_until() const { return hold_until_; }
  // Requests allowed in flight (0: no limit).
  size_t window() const { return window_; }
  // Overload answers in a row without a success in between.
  int overloads() const { return overloads_; }

  // An overload answer (429) at `now` to a request sent at `sent_at`,
  // with `running` requests in flight including it. A request sent before
  // the last overload brings the same news and changes nothing. The hold:
  // retry_after (or nothing), plus a random spread of up to
  // max(retry_after, policy.base) * 2^(overloads - 1), at most policy.cap,
  // or the memory of the last overload's spread if wider, times the number
  // of refusals in the burst (up to kMaxBurstUnits); without jitter the
  // whole spread. At most kMaxHold in all.
  void OnOverload(Clock::time_point now, Clock::time_point sent_at, size_t running,
                  std::optional<long> retry_after_s, const RetryPolicy& policy, uint32_t random);
  // The same service is overloaded elsewhere (IAM turned the token request
  // away): a fleet is booting. Start with one request at a time; no hold.
  void Narrow();
  // Any other answer to a request sent at `sent_at`: if it was sent after the
  // last overload, the service copes again; after a window's worth of such
  // answers (a round) the window grows by one and the memory of the last
  // overload's spread halves.
  void OnSuccess(Clock::time_point sent_at);

 private:
  static constexpr std::chrono::seconds kMaxHold{30};
  static constexpr int kMaxBurstUnits = 8;

  size_t max_window_;
  size_t window_;
  size_t successes_ = 0;  // since the window last grew
  Clock::time_point hold_until_{};
  Clock::time_point last_overload_ = Clock::time_point::min();
  int overloads_ = 0;
  int burst_units_ = 1;      // 1 + the other refusals of the same burst
  long long floor_ms_ = 0;   // the Retry-After of the latest overload
  long long spread_ms_ = 0;  // its spread for one refusal
  long long memory_ms_ = 0;  // its whole spread, halved per round of successes since
};

}  // namespace hpcs

#endif  // HPCS_KP_THROTTLE_H_
