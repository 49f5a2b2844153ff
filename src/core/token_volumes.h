// The volumes a boot is to open that an `hpcs` token may unlock, and whether
// each is open yet: while one is not, hpcs-unlock stays a password agent for
// it (cmd/prompt_race.h), because systemd-cryptsetup tries the token plugin
// only once, before it asks for the passphrase, and a KMS that answers late
// must still open the volume unattended.
#ifndef HPCS_CORE_TOKEN_VOLUMES_H_
#define HPCS_CORE_TOKEN_VOLUMES_H_

#include <string>
#include <string_view>
#include <vector>

namespace hpcs {

// The device paths of the volumes this boot opens: the crypttab's lines
// (but noauto ones), and the kernel command line's rd.luks.uuid= (UUID or
// luks-UUID) and rd.luks.name=UUID=NAME, from which the initramfs's
// systemd-cryptsetup-generator makes its units (a value that is not made of
// a UUID's characters is ignored). Each path once.
std::vector<std::string> BootVolumeDevices(std::string_view crypttab, std::string_view cmdline);

// Whether the block device at `path` (symbolic links followed) is held by
// another one (a dm-crypt mapping over it: the volume is open), as
// `sys`/class/block/NAME/holders says.
bool DeviceHeld(const std::string& path, const std::string& sys = "/sys");

// Of `devices`, those that exist, are not held, and whose LUKS2 header has
// an hpcs token for the Key Protect instance `instance`.
std::vector<std::string> PendingTokenVolumes(const std::vector<std::string>& devices,
                                             std::string_view instance,
                                             const std::string& sys = "/sys");

// The JSON of the hpcs tokens in `tokens_json` (LuksToken::json of a
// header's tokens of type "hpcs") that parse and name `instance`.
std::vector<std::string> OurHpcsTokens(const std::vector<std::string>& tokens_json,
                                       std::string_view instance);

}  // namespace hpcs

#endif  // HPCS_CORE_TOKEN_VOLUMES_H_
