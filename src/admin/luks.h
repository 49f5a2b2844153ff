// What `report` needs to know about a LUKS2 volume: its key slots (and their
// KDF's memory cost), its tokens, and whether a slot opens with a given key.
// Everything goes through the cryptsetup program, which works on a block
// device or an image file and needs no device-mapper for any of this.
#ifndef HPCS_ADMIN_LUKS_H_
#define HPCS_ADMIN_LUKS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"

namespace hpcs {

struct LuksKeyslot {
  int id = -1;
  std::string kdf;          // "argon2id", "argon2i", "pbkdf2"
  uint64_t memory_kib = 0;  // argon2's memory cost; 0 for pbkdf2
};

struct LuksToken {
  int id = -1;
  std::string type;             // "luks2-keyring", "systemd-tpm2", ...
  std::string key_description;  // luks2-keyring: the kernel "user" key it reads
  std::vector<int> keyslots;
};

struct LuksHeader {
  std::vector<LuksKeyslot> keyslots;  // by id
  std::vector<LuksToken> tokens;      // by id

  const LuksKeyslot* Keyslot(int id) const;
  // The luks2-keyring tokens for the user key `desc`.
  std::vector<const LuksToken*> KeyringTokens(std::string_view desc) const;
};

// Parses `cryptsetup luksDump --dump-json-metadata` output.
int ParseLuks2Metadata(std::string_view json, LuksHeader* out, std::string* err);

// Reads the LUKS2 header of a device or image file. -ENOENT: no such
// device; -EMEDIUMTYPE: not LUKS2; -EIO: cryptsetup failed otherwise.
int ReadLuksHeader(const std::string& device, LuksHeader* out, std::string* err);

// Whether key slot `slot` opens with `passphrase` (given to cryptsetup on
// stdin): 1 it opens, 0 it does not, negative when that could not be tried.
int TestLuksPassphrase(const std::string& device, int slot, const Secret& passphrase,
                       std::string* err);

}  // namespace hpcs

#endif  // HPCS_ADMIN_LUKS_H_
