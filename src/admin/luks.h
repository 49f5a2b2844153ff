// What `report` needs to know about a LUKS2 volume: its key slots (and their
// KDF's memory cost), its tokens (core/luks2_metadata.h), and whether a slot
// opens with a given key. Everything goes through the cryptsetup program,
// which works on a block device or an image file and needs no device-mapper
// for any of this.
#ifndef HPCS_ADMIN_LUKS_H_
#define HPCS_ADMIN_LUKS_H_

#include <string>

#include "base/secret.h"
#include "core/luks2_metadata.h"

namespace hpcs {

// Reads the LUKS2 header of a device or image file. -ENOENT: no such
// device; -EMEDIUMTYPE: not LUKS2; -EIO: cryptsetup failed otherwise.
int ReadLuksHeader(const std::string& device, LuksHeader* out, std::string* err);

// Whether key slot `slot` opens with `passphrase` (given to cryptsetup on
// stdin): 1 it opens, 0 it does not, negative when that could not be tried.
int TestLuksPassphrase(const std::string& device, int slot, const Secret& passphrase,
                       std::string* err);

}  // namespace hpcs

#endif  // HPCS_ADMIN_LUKS_H_
