// Time for code that waits. The KMS client asks a TimeSource for the time and
// sleeps through it, so unit tests can run it on a fake clock that jumps
// ahead instead of sleeping (ninja's DiskInterface habit, applied to time).
#ifndef HPCS_BASE_CLOCK_H_
#define HPCS_BASE_CLOCK_H_

#include <chrono>

namespace hpcs {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual Clock::time_point Now() = 0;
  virtual void SleepUntil(Clock::time_point t) = 0;
};

// The real clock (steady_clock and std::this_thread::sleep_until).
TimeSource& SystemTime();

}  // namespace hpcs

#endif  // HPCS_BASE_CLOCK_H_
