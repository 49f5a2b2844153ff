// The unwraps of `hpcs` tokens that the password agent asks for (a request
// came for a volume whose LUKS2 header holds one), done on the unwrapping
// thread with its KMS client: a queue from the agent's thread to that one.
#ifndef HPCS_CORE_TOKEN_JOBS_H_
#define HPCS_CORE_TOKEN_JOBS_H_

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "base/clock.h"

namespace hpcs {

struct TokenJob {
  std::string name;                 // the agent's name for its answer (TokenAnswerName)
  std::string uuid;                 // the volume's LUKS UUID: the AAD
  std::string device;               // for messages
  std::vector<std::string> tokens;  // the JSON of its hpcs tokens, tried in order
};

// What the agent calls the passphrase of the hpcs tokens of volume `uuid`.
std::string TokenAnswerName(const std::string& uuid);

class TokenJobs {
 public:
  // The agent's thread: a job to do.
  void Submit(TokenJob job);
  // The unwrapping thread: the next job, waiting for one until `until`;
  // false once Close was called or `until` passed. The job counts as busy
  // until the next call.
  bool Next(Clock::time_point until, TokenJob* job);
  // No job will be taken any more (those not taken are dropped).
  void Close();
  // A job is being done (taken by Next, and Next not called again).
  bool busy() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenJob> queue_;
  bool closed_ = false;
  bool busy_ = false;
};

}  // namespace hpcs

#endif  // HPCS_CORE_TOKEN_JOBS_H_
