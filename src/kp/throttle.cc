#include "kp/throttle.h"

#include <algorithm>

namespace hpcs {

bool HostThrottle::MayStart(Clock::time_point now, size_t running) const {
  if (now < hold_until_) return false;
  return window_ == 0 || running < window_;
}

void HostThrottle::OnOverload(Clock::time_point now, Clock::time_point sent_at, size_t running,
                              std::optional<long> retry_after_s, const RetryPolicy& policy,
                              uint32_t random) {
  (void)running;
  using std::chrono::milliseconds;
  const long long cap = std::chrono::duration_cast<milliseconds>(kMaxHold).count();
  if (sent_at < last_overload_) {
    // The same overload again, for another request of the burst: the more
    // of them the service turned away, the busier it is, so spread wider
    // (once per refused request, up to kMaxBurstUnits times the spread).
    if (burst_units_ >= kMaxBurstUnits) return;
    ++burst_units_;
  } else {
    last_overload_ = now;
    ++overloads_;
    burst_units_ = 1;
    // One request at a time until the service copes again: every host of a
    // fleet that was turned away comes back with one request, not a burst.
    window_ = 1;
    successes_ = 0;
    floor_ms_ = retry_after_s ? std::clamp<long long>(*retry_after_s, 0, cap / 1000) * 1000 : 0;
    // The spread doubles with every overload in a row, from the Retry-After
    // (or the policy's base when there is none), up to the policy's cap.
    long long unit = std::max<long long>(floor_ms_, policy.base.count());
    spread_ms_ = std::min<long long>(unit << std::clamp(overloads_ - 1, 0, 20),
                                     std::max<long long>(unit, policy.cap.count()));
    // One refusal spreads at least as wide as the host's memory of its last
    // overload: a host that was sent away with a wide spread (its whole burst
    // refused) must not come back at short intervals because a few of its
    // requests got through since (the memory halves with each round of
    // successes).
    spread_ms_ = std::max(spread_ms_, memory_ms_);
  }
  long long spread = std::min<long long>(spread_ms_ * burst_units_, cap);
  memory_ms_ = spread;
  long long delay = policy.jitter ? floor_ms_ + static_cast<long long>(random % (spread + 1))
                                  : std::max(floor_ms_, spread);
  hold_until_ = last_overload_ + milliseconds(std::min(delay, cap));
}

void HostThrottle::Narrow() {
  window_ = 1;
  successes_ = 0;
}

void HostThrottle::OnSuccess(Clock::time_point sent_at) {
  if (sent_at < last_overload_) return;  // sent into the overload: no news
  overloads_ = 0;
  if (window_ == 0) return;  // no overload yet
  // A window's worth of successes is a round: the memory of the last
  // overload halves, and one more request may be in flight.
  if (++successes_ < window_) return;
  successes_ = 0;
  memory_ms_ /= 2;
  if (max_window_ == 0 || window_ < max_window_) ++window_;
}

}  // namespace hpcs
