// rd.hpcs.* options from the kernel command line (hpcs-unlock at boot).
//
//   rd.hpcs=0                 do nothing
//   rd.hpcs.debug, rd.debug   debug messages
//   rd.hpcs.timeout=SECONDS   deadline for the whole run
//   rd.hpcs.key_timeout=SECONDS   keys expire then (0: never), as [HFL] key_timeout
//   rd.hpcs.endpoint=URL      Key Protect / HPCS endpoint  } the configured host or
//   rd.hpcs.iam=URL           IAM endpoint                 } IBM Cloud's only
//   rd.hpcs.crk=UUID          root key
//   rd.hpcs.proxy=URL         HTTPS proxy
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

struct BootOptions {
  bool disabled = false;
  bool debug = false;
  std::optional<long> timeout_s;
  std::optional<unsigned> key_timeout_s;
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
// the configured URL only when BootUrlAllowed or the config says
// allow_boot_endpoints; a refusal, with its reason, goes into *refused and
// the configured URL stays. (The kernel command line is not covered by the
// PCRs the API key is usually sealed to, and anyone at the boot prompt can
// edit it.) rd.hpcs.resolve and rd.hpcs.proxy need no such rule: TLS checks
// the configured host name end to end.
void ApplyBootOptions(const BootOptions& b, Config* c, std::vector<std::string>* refused = nullptr);

// Whether `url` may replace `configured` from the kernel command line: it is
// a plain https URL (ParseHttpsUrl: the host curl connects to) and its host is
// the configured URL's host (any port) or IsIbmCloudHost. Else false with the
// reason in *why.
bool BootUrlAllowed(std::string_view configured, std::string_view url, std::string* why);

// *.cloud.ibm.com and *.hs-crypto.appdomain.cloud (HPCS instance endpoints).
bool IsIbmCloudHost(std::string_view host);

}  // namespace hpcs

#endif  // HPCS_CORE_CMDLINE_H_
