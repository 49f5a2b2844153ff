// The service manager's notification protocol (sd_notify(3)), spoken
// directly: one datagram of "KEY=VALUE" lines to the AF_UNIX socket named by
// $NOTIFY_SOCKET (a path, or an abstract name written "@name"). The static
// boot unlocker cannot link libsystemd, and the protocol is this small.
#ifndef HPCS_BASE_SD_NOTIFY_H_
#define HPCS_BASE_SD_NOTIFY_H_

#include <string>
#include <string_view>

namespace hpcs {

// Sends `state` (e.g. "READY=1\nSTATUS=...") to the service manager. Returns
// 1 when sent, 0 when there is no $NOTIFY_SOCKET (not run by systemd, or a
// unit that is not Type=notify), negative with *err when sending failed.
int NotifyServiceManager(std::string_view state, std::string* err);

}  // namespace hpcs

#endif  // HPCS_BASE_SD_NOTIFY_H_
