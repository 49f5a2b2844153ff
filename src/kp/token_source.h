// Where a KpClient gets its bearer token: a few HTTP requests made one after
// the other, the answer of the last being the token (access_token,
// expires_in). An API key takes one request to IAM; a VPC instance's identity
// takes two to its metadata service (kp/vpc_identity.h). The client runs each
// step with the deadline, retries and backoff of any other request.
#ifndef HPCS_KP_TOKEN_SOURCE_H_
#define HPCS_KP_TOKEN_SOURCE_H_

#include <memory>
#include <string>

#include "base/secret.h"
#include "kp/kp_call.h"

namespace hpcs {

class TokenSource {
 public:
  virtual ~TokenSource() = default;

  // How many requests one token takes (at least 1).
  virtual int Steps() const = 0;
  // Fills *call (a fresh KpCall) with request `step`, 0 first. For a later
  // step, `previous` is the finished request before it, which succeeded (a
  // 2xx); an answer it cannot use is -EPROTO, said in *err.
  virtual int MakeStep(int step, const KpCall* previous, KpCall* call, std::string* err) const = 0;
  // The message for a step that failed (call.error says how), naming where
  // it was sent and what to do.
  virtual std::string DescribeFailure(int step, const KpCall& call) const = 0;
  // What to add to the error of a KMS request that the service refused
  // (401, 403) with a token from here; "" if nothing.
  virtual std::string KmsRefusalHint() const { return ""; }
  // "host:port" the first step goes to: the client opens the KMS connection
  // ahead while the token is on its way, unless it is the same.
  virtual std::string Origin() const = 0;
};

// IAM's API key grant: POST {iam}/identity/token.
std::unique_ptr<TokenSource> MakeApiKeyTokenSource(std::string iam_endpoint_url, Secret api_key);

}  // namespace hpcs

#endif  // HPCS_KP_TOKEN_SOURCE_H_
