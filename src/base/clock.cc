#include "base/clock.h"

#include <thread>

namespace hpcs {
namespace {

class SystemTimeSource : public TimeSource {
 public:
  Clock::time_point Now() override { return Clock::now(); }
  void SleepUntil(Clock::time_point t) override { std::this_thread::sleep_until(t); }
};

}  // namespace

TimeSource& SystemTime() {
  static SystemTimeSource time;
  return time;
}

}  // namespace hpcs
