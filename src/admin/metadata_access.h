// Who on this machine can reach the VPC instance metadata service. With
// [KP] auth = vpc, whoever reaches it can get the trusted profile's IAM token
// and unwrap every disk key, so `report` asks whether a process that is not
// root gets a connection (the opt-in nftables rule, hpcs-metadata-root-only,
// is one way to stop it).
#ifndef HPCS_ADMIN_METADATA_ACCESS_H_
#define HPCS_ADMIN_METADATA_ACCESS_H_

#include <sys/types.h>

#include <chrono>
#include <string>

namespace hpcs {

enum class Reach {
  kConnected,  // a TCP connection was made
  kRefused,    // refused, unreachable, not permitted (a firewall), or no answer in time
};

// Tries a TCP connection to host:port (a name or an address) from a child
// process running as uid/gid (root's own: 0, 0), within timeout. An error
// (no child, cannot take that uid, the name does not resolve) is negative,
// said in *err.
int ReachAs(uid_t uid, gid_t gid, const std::string& host, int port,
            std::chrono::milliseconds timeout, Reach* out, std::string* err);

}  // namespace hpcs

#endif  // HPCS_ADMIN_METADATA_ACCESS_H_
