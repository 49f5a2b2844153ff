// `hpcs-for-luks token make` and `token open` (admin/luks_tokens.h): an
// hpcs LUKS2 token made for a volume, and a volume's token opened, for
// hpcs-enroll --token, for scripts and for an emergency. Passphrases only on
// stdin and stdout, never in argv:
//   token make --luks-uuid UUID --keyslot N [--uuid CRK] [--name DESC]
//       the passphrase on stdin (byte for byte: no newline, no NUL, at most
//       512 bytes), wrapped with the volume's LUKS UUID as AAD and checked
//       (core/token_open.h's WrapHpcsToken); the token JSON and a newline on
//       stdout, for `cryptsetup token import --json-file -`.
//   token open --device DEVICE [--token-id N]
//       the passphrase of the device's hpcs token (raw, no newline) on
//       stdout, which must not be a terminal: for `| cryptsetup open
//       --key-file -`.
#ifndef HPCS_CMD_TOKEN_COMMAND_H_
#define HPCS_CMD_TOKEN_COMMAND_H_

#include <string>

#include "cmd/cli_verbs.h"

namespace hpcs {

inline constexpr Text kTokenLuksUuid{"--luks-uuid"};
inline constexpr Text kTokenKeyslot{"--keyslot"};
inline constexpr Text kTokenName{"--name"};
inline constexpr Text kTokenDevice{"--device"};
inline constexpr Text kTokenId{"--token-id"};

std::string CheckTokenMake(const Args& a);
std::string CheckTokenOpen(const Args& a);
// 0 done; 1 failed (logged).
int TokenMakeCommand(Context& ctx);
int TokenOpenCommand(Context& ctx);

}  // namespace hpcs

#endif  // HPCS_CMD_TOKEN_COMMAND_H_
