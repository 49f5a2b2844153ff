// A LUKS2 volume's key slots and tokens, from its JSON metadata: parsed from
// `cryptsetup luksDump --dump-json-metadata` (the admin CLI) or read from the
// on-disk header itself, with no cryptsetup program and no libcryptsetup (the
// boot unlocker, which must know whether a device carries our token).
#ifndef HPCS_CORE_LUKS2_METADATA_H_
#define HPCS_CORE_LUKS2_METADATA_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hpcs {

struct LuksKeyslot {
  int id = -1;
  std::string kdf;          // "argon2id", "argon2i", "pbkdf2"
  uint64_t memory_kib = 0;  // argon2's memory cost; 0 for pbkdf2

  bool operator==(const LuksKeyslot&) const = default;
};

struct LuksToken {
  int id = -1;
  std::string type;             // "luks2-keyring", "systemd-tpm2", ...
  std::string key_description;  // luks2-keyring: the kernel "user" key it reads
  std::vector<int> keyslots;
  std::string json;  // the token's own JSON object, compact (hpcs: ParseHpcsToken)

  bool operator==(const LuksToken&) const = default;
};

struct LuksHeader {
  // The volume's UUID (luksUUID) from the binary header: only
  // ReadLuks2Header knows it; the JSON metadata does not hold it.
  std::string uuid;
  std::vector<LuksKeyslot> keyslots;  // by id
  std::vector<LuksToken> tokens;      // by id

  const LuksKeyslot* Keyslot(int id) const;
  // The luks2-keyring tokens for the user key `desc`.
  std::vector<const LuksToken*> KeyringTokens(std::string_view desc) const;

  bool operator==(const LuksHeader&) const = default;
};

// A key slot or token id as LUKS2 spells it: decimal digits, 0 to 1024.
bool ParseLuks2Id(std::string_view s, int* out);

// Parses LUKS2 JSON metadata (the JSON area of the header, as
// `cryptsetup luksDump --dump-json-metadata` prints it).
int ParseLuks2Metadata(std::string_view json, LuksHeader* out, std::string* err);

// Reads the LUKS2 header of a block device or an image file itself (the
// on-disk format of cryptsetup's docs/on-disk-format-luks2.pdf): the binary
// header at offset 0 and its JSON area, checked against their SHA-256
// checksum. When that primary copy is damaged, the secondary copy (at one of
// the offsets LUKS2 allows, 16 KiB to 4 MiB) is read instead, as cryptsetup
// does; with both intact, the one with the higher sequence number. A device
// with no LUKS2 magic at offset 0 is not LUKS2, whatever follows (cryptsetup
// would look for a secondary copy, and refuse it when blkid finds another
// signature on the device, which we cannot ask). Errors name the path:
// -ENOENT no such file; -EMEDIUMTYPE not LUKS2 (LUKS1, no magic, too short,
// neither a file nor a block device); -EBADMSG both copies damaged; -EIO a
// read error; other -errno from open(2).
int ReadLuks2Header(const std::string& path, LuksHeader* out, std::string* err);

}  // namespace hpcs

#endif  // HPCS_CORE_LUKS2_METADATA_H_
