#include "kp/vpc_identity.h"

#include <cerrno>
#include <utility>

#include "base/error.h"
#include "base/json.h"
#include "kp/kp_answers.h"
#include "kp/url.h"

namespace hpcs {

int CheckMetadataUrl(std::string_view url, std::string* err) {
  HttpsUrl u;
  const std::string allowed = std::string("the instance metadata service is ") +
                              kDefaultMetadataEndpoint + ", http://" + kMetadataHost +
                              " or (with secure access) https://" + kMetadataHost;
  if (int r = ParseUrl(url, UrlSchemes::kHttpAllowed, &u, err); r < 0) return r;
  const bool host_ok = u.host == kMetadataHost || (!u.https && u.host == kMetadataAddress);
  const bool port_ok = u.port == (u.https ? 443 : 80);
  if (!host_ok || !port_ok || !u.path.empty() || u.has_query || u.has_fragment) {
    return Fail(err, -EINVAL, "'" + UrlForMessage(url) + "' is not allowed: " + allowed);
  }
  return 0;
}

std::string DescribeProfile(const TrustedProfile& p) {
  if (!p.id.empty()) return "the trusted profile '" + p.id + "'";
  if (!p.crn.empty()) return "the trusted profile '" + p.crn + "'";
  return "the instance's default trusted profile";
}

namespace {

class VpcTokenSource final : public TokenSource {
 public:
  VpcTokenSource(std::string metadata_url, TrustedProfile profile, std::string kms_instance)
      : url_(std::move(metadata_url)),
        profile_(std::move(profile)),
        kms_instance_(std::move(kms_instance)) {
    JsonInit();
  }

  int Steps() const override { return 2; }

  int MakeStep(int step, const KpCall* previous, KpCall* call, std::string* err) const override {
    const std::string query = std::string("?version=") + kMetadataApiVersion;
    call->metadata_service = true;
    call->content_type = "application/json";
    if (step == 0) {
      call->method = "PUT";
      call->path = url_ + "/instance_identity/v1/token" + query;
      call->extra_headers.push_back("Metadata-Flavor: ibm");
      call->body =
          Secret::FromString("{\"expires_in\":" + std::to_string(kIdentityTokenLifetimeS) + "}");
      return 0;
    }
    IamToken identity;
    KmsAnswer a{previous->status, previous->response_type, previous->response.view()};
    std::string why;
    if (ParseIamToken(a, &identity, &why) < 0) {
      return Fail(err, -EPROTO,
                  "cannot get an instance identity token from the metadata service at " + url_ +
                      ": " + why);
    }
    call->method = "POST";
    call->path = url_ + "/instance_identity/v1/iam_token" + query;
    call->authorization.Append("Authorization: Bearer ");
    call->authorization.Append(identity.access_token.view());
    if (profile_.id.empty() && profile_.crn.empty()) {
      call->content_type.clear();  // no body: the instance's default profile
      return 0;
    }
    Json body(cJSON_CreateObject());
    cJSON* tp = cJSON_AddObjectToObject(body.get(), "trusted_profile");
    if (!profile_.id.empty()) {
      cJSON_AddStringToObject(tp, "id", profile_.id.c_str());
    } else {
      cJSON_AddStringToObject(tp, "crn", profile_.crn.c_str());
    }
    call->body = JsonPrint(body.get());
    return 0;
  }

  std::string DescribeFailure(int step, const KpCall& call) const override {
    const std::string at = " from the metadata service at " + url_ + ": " + call.error;
    if (step == 0) {
      std::string hint;
      if (call.status == 0) {
        hint =
            "; is the metadata service enabled on this instance? It is off unless enabled "
            "(the instance's metadata_service.enabled; with its secure access, "
            "metadata_endpoint_url = https://" +
            std::string(kMetadataHost) + ")";
      }
      return "cannot get an instance identity token" + at + hint;
    }
    std::string hint;
    if (call.status >= 400 && call.status < 500) {
      hint = profile_.id.empty() && profile_.crn.empty()
                 ? "; does this instance have a default trusted profile? Or name one in "
                   "[KP] trusted_profile_id"
                 : "; does the profile exist, and is this instance one of its compute "
                   "resources (IAM: trusted profiles, Compute resources)?";
    }
    return "cannot get an IAM token for " + DescribeProfile(profile_) + at + hint;
  }

  std::string KmsRefusalHint() const override {
    return " (the token is " + DescribeProfile(profile_) +
           "'s: grant it a Key Protect service role on instance " + kms_instance_ +
           ": Reader wraps and unwraps; create and delete need Writer or Manager)";
  }

  std::string Origin() const override {
    HttpsUrl u;
    return ParseUrl(url_, UrlSchemes::kHttpAllowed, &u, nullptr) == 0 ? u.Origin() : "";
  }

 private:
  std::string url_;
  TrustedProfile profile_;
  std::string kms_instance_;
};

}  // namespace

std::unique_ptr<TokenSource> MakeVpcTokenSource(std::string metadata_url, TrustedProfile profile,
                                                std::string kms_instance) {
  return std::make_unique<VpcTokenSource>(std::move(metadata_url), std::move(profile),
                                          std::move(kms_instance));
}

}  // namespace hpcs
