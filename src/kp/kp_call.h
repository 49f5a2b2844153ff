// One request of the Key Protect client, and what became of it.
#ifndef HPCS_KP_KP_CALL_H_
#define HPCS_KP_KP_CALL_H_

#include <string>
#include <vector>

#include "base/secret.h"

namespace hpcs {

// One API call. The caller fills the request part; Run() fills the rest.
struct KpCall {
  std::string method = "GET";
  std::string path;  // "/api/v2/keys/..." (query included); a token step: the whole URL
  std::string content_type;
  std::vector<std::string> extra_headers;  // nothing secret
  Secret body;
  // Token steps only (token_source.h): an "Authorization: ..." line of their
  // own, and whether the request goes to the instance metadata service
  // (HttpRequest::metadata_service). KMS requests carry the client's token.
  Secret authorization;
  bool metadata_service = false;

  int result = 0;  // 0: a 2xx response; negative errno-style on failure
  long status = 0;
  Secret response;
  std::string response_type;   // its Content-Type
  std::string error;           // a message for people, without secrets
  std::string correlation_id;  // of the last attempt
  int attempts = 0;
  bool unreachable = false;  // no HTTP answer, or only retryable ones until the deadline
};

}  // namespace hpcs

#endif  // HPCS_KP_KP_CALL_H_
