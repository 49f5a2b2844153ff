// auth = vpc: the metadata service gives the trusted profile's IAM token to
// any process that reaches it. The report tries a connection as root and as
// nobody; only a machine where nobody fails has the access limited to root.
#include <cerrno>

#include "admin/metadata_access.h"
#include "admin/report_checks.h"
#include "kp/url.h"

namespace hpcs {

namespace {

constexpr uid_t kNobody = 65534;
constexpr auto kTryFor = std::chrono::seconds(3);

}  // namespace

void CheckMetadataAccess(ReportContext& ctx) {
  const Config& c = ctx.config;
  if (c.auth != Auth::kVpc) return;
  Report& r = ctx.report;
  HttpsUrl u;
  if (CheckMetadataUrl(c.metadata_endpoint_url, nullptr) < 0 ||
      ParseUrl(c.metadata_endpoint_url, UrlSchemes::kHttpAllowed, &u, nullptr) < 0) {
    return;  // CheckConfig named it
  }
  const std::string& md = c.metadata_endpoint_url;
  Reach root = Reach::kRefused, nobody = Reach::kRefused;
  std::string err;
  if (ReachAs(0, 0, u.host, u.port, kTryFor, &root, &err) < 0) {
    r.Add("metadata-access", md, Level::kInfo, "not checked: " + err);
    return;
  }
  if (root != Reach::kConnected) {
    r.Add("metadata-access", md, Level::kInfo,
          "not checked: root does not reach the metadata service either (see the auth finding)");
    return;
  }
  if (ReachAs(kNobody, kNobody, u.host, u.port, kTryFor, &nobody, &err) < 0) {
    r.Add("metadata-access", md, Level::kInfo, "not checked: " + err);
    return;
  }
  if (nobody == Reach::kConnected) {
    r.Add("metadata-access", md, Level::kWarn,
          "a process that is not root (uid " + std::to_string(kNobody) +
              ") reaches the metadata service: any local user can get an IAM token of " +
              DescribeProfile(c.trusted_profile) + " and unwrap every disk key",
          "limit it to root: systemctl enable --now hpcs-metadata-root-only.service "
          "(README: IBM Cloud VPC)");
    return;
  }
  r.Add("metadata-access", md, Level::kOk,
        "only root reaches the metadata service (a process as uid " + std::to_string(kNobody) +
            " does not)");
}

}  // namespace hpcs
