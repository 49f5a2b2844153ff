#include "core/token_jobs.h"

#include <utility>

namespace hpcs {

std::string TokenAnswerName(const std::string& uuid) { return "hpcs token of " + uuid; }

void TokenJobs::Submit(TokenJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
}

bool TokenJobs::Next(Clock::time_point until, TokenJob* job) {
  std::unique_lock<std::mutex> lock(mu_);
  busy_ = false;
  cv_.wait_until(lock, until, [&] { return closed_ || !queue_.empty(); });
  if (closed_ || queue_.empty()) return false;
  *job = std::move(queue_.front());
  queue_.pop_front();
  busy_ = true;
  return true;
}

void TokenJobs::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    queue_.clear();
  }
  cv_.notify_all();
}

bool TokenJobs::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_;
}

}  // namespace hpcs
