// The kernel keyring, behind an interface so unit tests can use a fake.
//
// Keys go to root's user keyring @u with type "logon" (dm-crypt tables) or
// "user" (LUKS2 luks2-keyring tokens). See DESIGN.md ("Kernel keyring") for the
// permission and possession rules measured on the real kernel.
#ifndef HPCS_CORE_KEYRING_H_
#define HPCS_CORE_KEYRING_H_

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace hpcs {

enum class KeyType { kLogon, kUser };

std::string_view KeyTypeName(KeyType t);
// "user/luks:root": how logs and the journal (HPCS_KEY=) name a key.
std::string KeyLabel(KeyType t, std::string_view desc);
std::optional<KeyType> KeyTypeFromName(std::string_view name);

class Keyring {
 public:
  virtual ~Keyring() = default;
  // Adds the key to @u, replacing the payload of a key with the same type and
  // description there. With timeout_s > 0 the kernel expires the key that
  // many seconds later (keyctl_set_timeout); 0: it stays. *serial gets the
  // key's id.
  virtual int Add(KeyType type, const std::string& desc, std::span<const std::byte> data,
                  unsigned timeout_s, long* serial, std::string* err) = 0;
  // Revokes the key of this type and description linked in @u. *found says
  // whether there was one; not finding it is not an error.
  virtual int Revoke(KeyType type, const std::string& desc, bool* found, std::string* err) = 0;
  // Whether a live key of this type and description is linked in @u.
  virtual bool Has(KeyType type, const std::string& desc) = 0;
};

std::unique_ptr<Keyring> MakeKernelKeyring();

// A logon key's description needs a "service:" prefix (the kernel refuses
// others); user keys take any non-empty description.
bool ValidDescription(KeyType type, std::string_view desc, std::string* why);

}  // namespace hpcs

#endif  // HPCS_CORE_KEYRING_H_
