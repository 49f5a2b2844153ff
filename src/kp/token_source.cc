#include "kp/token_source.h"

#include <cerrno>
#include <utility>

#include "kp/http_text.h"
#include "kp/url.h"

namespace hpcs {
namespace {

class ApiKeyTokenSource final : public TokenSource {
 public:
  ApiKeyTokenSource(std::string iam, Secret api_key)
      : iam_(std::move(iam)), api_key_(std::move(api_key)) {}

  int Steps() const override { return 1; }

  int MakeStep(int, const KpCall*, KpCall* call, std::string*) const override {
    call->method = "POST";
    call->path = iam_ + "/identity/token";
    call->content_type = "application/x-www-form-urlencoded";
    call->body.Append("grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=");
    UrlEncodeAppend(api_key_.view(), &call->body);
    return 0;
  }

  std::string DescribeFailure(int, const KpCall& call) const override {
    return "cannot get an IAM token from " + iam_ + ": " + call.error;
  }

  std::string Origin() const override {
    HttpsUrl u;
    return ParseHttpsUrl(iam_, &u, nullptr) == 0 ? u.Origin() : "";
  }

 private:
  std::string iam_;
  Secret api_key_;
};

}  // namespace

std::unique_ptr<TokenSource> MakeApiKeyTokenSource(std::string iam_endpoint_url, Secret api_key) {
  return std::make_unique<ApiKeyTokenSource>(std::move(iam_endpoint_url), std::move(api_key));
}

}  // namespace hpcs
