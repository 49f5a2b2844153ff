// IBM Cloud VPC: the bearer token comes from the instance's own identity, so
// that no API key is stored anywhere ([KP] auth = vpc). The instance
// metadata service (link-local, reached only from the instance) gives an
// instance identity token, which it exchanges for an IAM token of a trusted
// profile linked to the instance:
//
//   PUT  {md}/instance_identity/v1/token?version=2022-03-01
//        Metadata-Flavor: ibm                    {"expires_in": 300}
//   POST {md}/instance_identity/v1/iam_token?version=2022-03-01
//        Authorization: Bearer <identity token>  {"trusted_profile": {"id": ...}}
//
// Both answer {"access_token", "expires_in", ...}. 2022-03-01 is the version
// IBM's SDK cores send; the service keeps old versions' paths
// (2025-08-26 moved them to /identity/v1/token and /identity/v1/iam_tokens).
#ifndef HPCS_KP_VPC_IDENTITY_H_
#define HPCS_KP_VPC_IDENTITY_H_

#include <memory>
#include <string>
#include <string_view>

#include "kp/token_source.h"

namespace hpcs {

inline constexpr char kDefaultMetadataEndpoint[] = "http://169.254.169.254";
inline constexpr char kMetadataAddress[] = "169.254.169.254";
inline constexpr char kMetadataHost[] = "api.metadata.cloud.ibm.com";
inline constexpr char kMetadataApiVersion[] = "2022-03-01";
// The identity token only lives until the IAM token is had.
inline constexpr int kIdentityTokenLifetimeS = 300;

// A URL may name the metadata service if it is http://169.254.169.254,
// http://api.metadata.cloud.ibm.com or (the instance's "secure access")
// https://api.metadata.cloud.ibm.com, at the scheme's own port, with no path:
// the only plain-http URLs anything here is sent to. -EINVAL, naming the URL
// and what is allowed, otherwise.
int CheckMetadataUrl(std::string_view url, std::string* err);

// The trusted profile to get the IAM token of: by id, by CRN, or (neither)
// the instance's default trusted profile.
struct TrustedProfile {
  std::string id;
  std::string crn;
};
// "the trusted profile 'Profile-...'" or "the instance's default trusted profile".
std::string DescribeProfile(const TrustedProfile& p);

// The two steps above; metadata_url passed CheckMetadataUrl. kms_instance
// is named in the hint for a KMS that refuses the token.
std::unique_ptr<TokenSource> MakeVpcTokenSource(std::string metadata_url, TrustedProfile profile,
                                                std::string kms_instance);

}  // namespace hpcs

#endif  // HPCS_KP_VPC_IDENTITY_H_
