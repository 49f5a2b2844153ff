// `hpcs-for-luks luks --device DEVICE [--json]`: the LUKS2 header as
// admin/luks.h reads it (cryptsetup luksDump --dump-json-metadata), for
// hpcs-enroll and its parts, which ask this instead of reading luksDump's
// text or token JSON themselves. One line a key slot and a token, for
// `while read -r what id ...` in bash:
//   keyslot ID KDF MEMORY_KIB
//   token ID TYPE KEYSLOTS [KEY_DESCRIPTION]
//   token ID hpcs KEYSLOTS CRK INSTANCE NAME
// KEYSLOTS is comma-separated ("-" for none); KEY_DESCRIPTION, last so that
// `read` gives it whole, is there for a token that has one; an hpcs token
// that parses (core/hpcs_token.h) has its root key, instance and name
// ("-" for none) instead. In every field
// white space, control characters and '\' are written \xNN, so that a field
// never splits or ends a line. With --json, the same as one object.
#ifndef HPCS_CMD_LUKS_COMMAND_H_
#define HPCS_CMD_LUKS_COMMAND_H_

#include <string>

#include "admin/luks.h"
#include "cmd/cli_verbs.h"

namespace hpcs {

// The options of `luks`, read by the verb table and by the verb.
inline constexpr Text kLuksDevice{"--device"};
inline constexpr Flag kLuksJson{"--json"};

std::string FormatLuksLines(const LuksHeader& h);
// {"keyslots":[{"id":0,"kdf":"argon2id","memory_kib":65536}],
//  "tokens":[{"id":0,"type":"luks2-keyring","keyslots":[2],
//             "key_description":"luks:root"},
//            {"id":1,"type":"hpcs","keyslots":[3],"crk":"...","instance":"...",
//             "name":"luks:data"}]}
std::string FormatLuksJson(const LuksHeader& h);

// The verb: --device is required.
std::string CheckLuks(const Args& a);
// 0 printed, 1 the header could not be read (logged).
int LuksCommand(Context& ctx);

}  // namespace hpcs

#endif  // HPCS_CMD_LUKS_COMMAND_H_
