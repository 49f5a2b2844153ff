#include "retry.h"

#include <algorithm>

namespace hpcs {

bool IsRetryableStatus(long s) { return s == 429 || (s >= 500 && s <= 599 && s != 501); }

std::chrono::milliseconds BackoffDelay(const RetryPolicy& p, int retry,
                                       std::optional<long> retry_after_s, uint32_t random) {
  using std::chrono::milliseconds;
  int shift = std::clamp(retry - 1, 0, 30);
  long long ceiling = std::min<long long>(p.base.count() << shift, p.cap.count());
  // Equal jitter: [ceiling/2, ceiling].
  long long half = ceiling / 2;
  long long delay = half + (half > 0 ? static_cast<long long>(random % (half + 1)) : 0);
  if (retry_after_s) delay = std::max<long long>(delay, *retry_after_s * 1000LL);
  return milliseconds(std::min<long long>(delay, p.cap.count()));
}

}  // namespace hpcs
