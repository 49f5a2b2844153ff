// rd.hpcs.* options from the kernel command line (hpcs-unlock at boot).
//
//   rd.hpcs=0                 do nothing
//   rd.hpcs.debug, rd.debug   debug messages
//   rd.hpcs.timeout=SECONDS   deadline for the whole run
//   rd.hpcs.grace=SECONDS     how long the passphrase prompt may wait for the KMS (0..60)
//   rd.hpcs.key_timeout=SECONDS   keys expire then (0: never), as [HFL] key_timeout
//   rd.hpcs.token_timeout=SECONDS the hpcs token's bound (1..60, more is 60), as [HFL]
//   token_timeout rd.hpcs.endpoint=URL      Key Protect / HPCS endpoint  } https://HOST[:PORT],
//   HOST rd.hpcs.iam=URL           IAM endpoint                 } the configured one or the
//   service's rd.hpcs.crk=UUID          root key rd.hpcs.proxy=URL         HTTPS proxy
//   rd.hpcs.keys=DESC,...     only these keys
//   rd.hpcs.resolve=HOST:ADDRESS   pin a host name to an address (repeatable)
#ifndef HPCS_CORE_CMDLINE_H_
#define HPCS_CORE_CMDLINE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"

namespace hpcs {

// rd.hpcs.grace= (and hpcs-unlock --grace) at most: a prompt held back longer
// than a minute is the wait that the race is there to end.
inline constexpr long kMaxGraceS = 60;

struct BootOptions {
  bool disabled = false;
  bool debug = false;
  std::optional<long> timeout_s;
  std::optional<long> grace_s;  // 0..kMaxGraceS
  std::optional<unsigned> key_timeout_s;
  std::optional<unsigned> token_timeout_s;  // 1..kMaxTokenTimeoutS
  std::string endpoint;
  std::string iam;
  std::string crk;
  std::string proxy;
  std::vector<std::string> keys;
  std::vector<std::string> resolve;
  std::vector<std::string> warnings;  // unknown or malformed rd.hpcs.* options
};

// Splits a kernel command line into words, honouring double quotes as the
// kernel does ("a b" stays one word, the quotes are removed).
std::vector<std::string> SplitKernelCmdline(std::string_view text);

// The last occurrence of an option wins, as for the kernel's own options.
BootOptions ParseBootOptions(std::string_view cmdline);

// Command line beats config, except where secrets go: rd.hpcs.endpoint= (the
// bearer token goes there) and rd.hpcs.iam= (the API key goes there) replace
// the configured URL only when CheckBootUrl allows it (a host it refuses is
// taken all the same when the config says allow_boot_endpoints); a refusal,
// with its reason, goes into *refused and the configured URL stays. Each URL
// that does change, even to an allowed one, is named, old and new, in
// *changed: for a warning, as the command line is not the config. (The kernel
// command line is not covered by the PCRs the API key is usually sealed to,
// and anyone at the boot prompt can edit it.) rd.hpcs.resolve and
// rd.hpcs.proxy need no such rule: TLS checks the configured host name end to
// end.
void ApplyBootOptions(const BootOptions& b, Config* c, std::vector<std::string>* refused = nullptr,
                      std::vector<std::string>* changed = nullptr);

// Which URL a boot option replaces: where the API key goes, or the token.
enum class BootUrlFor { kIam, kKms };

// Whether `url` may replace `configured` (a URL for `service`) from the kernel
// command line. 0 when it is https://HOST[:PORT] and nothing more (a trailing
// "/" at most) and HOST is the configured URL's host or a host of the
// service (IsIamHost, IsKmsHost). -EINVAL when it is not such a URL (not one
// curl reads as written, a user part, a path, a query or a fragment: no
// setting allows those), -EPERM when only its host is wrong; the reason in
// *why. A URL that is not https is judged as its https twin: the scheme is
// CheckKmsSettings' to refuse.
int CheckBootUrl(BootUrlFor service, std::string_view configured, std::string_view url,
                 std::string* why);

// IBM Cloud IAM: iam.cloud.ibm.com, private.iam.cloud.ibm.com.
bool IsIamHost(std::string_view host);

// The key management endpoints of IBM's documentation (REGION: lower-case
// letters, digits and '-'; INSTANCE: the instance id, a UUID):
//   Key Protect             REGION.kms.cloud.ibm.com, private.REGION.kms.cloud.ibm.com
//   HPCS, port-based        api.REGION.hs-crypto.cloud.ibm.com,
//                           api.private.REGION.hs-crypto.cloud.ibm.com
//   HPCS, instance-based    INSTANCE.api.REGION.hs-crypto.appdomain.cloud,
//                           INSTANCE.api.private.REGION.hs-crypto.appdomain.cloud
//   Key Protect Dedicated   INSTANCE.api.REGION.kms.appdomain.cloud
bool IsKmsHost(std::string_view host);

}  // namespace hpcs

#endif  // HPCS_CORE_CMDLINE_H_
