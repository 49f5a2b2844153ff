#include "core/keyring.h"

#include <keyutils.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace hpcs {

namespace {

// Possessor: everything. Owner (uid 0) without possession: view, read,
// write (so revoke works), search. No group or other access. Measured on the
// kernel (DESIGN.md, "Kernel keyring"): with the default permissions (possessor all, owner
// view) a service with a private session keyring can neither read nor revoke
// a key in @u, and cannot even change the permissions of a key it has just
// added there.
constexpr key_perm_t kKeyPerm =
    KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ | KEY_USR_WRITE | KEY_USR_SEARCH;

class KernelKeyring : public Keyring {
 public:
  int Add(KeyType type, const std::string& desc, std::span<const std::byte> data,
          unsigned timeout_s, long* serial, std::string* err) override {
    std::string name(KeyTypeName(type));
    // Born in our process keyring, which we possess, so that we may set its
    // permissions and its timeout (both need setattr); then linked into @u, displacing an older key
    // of the same type and description there, and dropped from the process keyring.
    key_serial_t id =
        add_key(name.c_str(), desc.c_str(), data.data(), data.size(), KEY_SPEC_PROCESS_KEYRING);
    if (id < 0) {
      int e = errno;
      return FailErrno(err, e, "add_key(" + name + ", '" + desc + "') failed");
    }
    const char* step = nullptr;
    if (keyctl_setperm(id, kKeyPerm) < 0) {
      step = "setting the permissions of";
    } else if (timeout_s > 0 && keyctl_set_timeout(id, timeout_s) < 0) {
      step = "setting the timeout of";
    } else if (keyctl_link(id, KEY_SPEC_USER_KEYRING) < 0) {
      step = "linking into @u";
    }
    if (step) {
      int e = errno;
      keyctl_revoke(id);
      keyctl_unlink(id, KEY_SPEC_PROCESS_KEYRING);
      return FailErrno(err, e, std::string(step) + " " + name + " key '" + desc + "' failed");
    }
    keyctl_unlink(id, KEY_SPEC_PROCESS_KEYRING);
    if (serial) *serial = id;
    return 0;
  }

  int Revoke(KeyType type, const std::string& desc, bool* found, std::string* err) override {
    std::string name(KeyTypeName(type));
    *found = false;
    long id = keyctl_search(KEY_SPEC_USER_KEYRING, name.c_str(), desc.c_str(), 0);
    if (id < 0) {
      if (errno == ENOKEY || errno == EKEYREVOKED || errno == EKEYEXPIRED) return 0;
      int e = errno;
      return FailErrno(err, e, "searching @u for " + name + " key '" + desc + "' failed");
    }
    *found = true;
    if (keyctl_revoke(static_cast<key_serial_t>(id)) < 0) {
      int e = errno;
      return FailErrno(err, e, "revoking " + name + " key '" + desc + "' failed");
    }
    // Also drop the link so the revoked key does not linger in listings.
    keyctl_unlink(static_cast<key_serial_t>(id), KEY_SPEC_USER_KEYRING);
    return 0;
  }

  bool Has(KeyType type, const std::string& desc) override {
    std::string name(KeyTypeName(type));
    return keyctl_search(KEY_SPEC_USER_KEYRING, name.c_str(), desc.c_str(), 0) >= 0;
  }
};

}  // namespace

std::string_view KeyTypeName(KeyType t) { return t == KeyType::kLogon ? "logon" : "user"; }

std::string KeyLabel(KeyType t, std::string_view desc) {
  return std::string(KeyTypeName(t)) + "/" + std::string(desc);
}

std::optional<KeyType> KeyTypeFromName(std::string_view name) {
  if (name == "logon") return KeyType::kLogon;
  if (name == "user") return KeyType::kUser;
  return std::nullopt;
}

bool ValidDescription(KeyType type, std::string_view desc, std::string* why) {
  if (desc.empty() || desc.size() > 4095) {
    if (why) *why = "a key description must have 1 to 4095 characters";
    return false;
  }
  if (type == KeyType::kLogon) {
    size_t colon = desc.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      if (why) *why = "a logon key description needs a 'prefix:' (for example 'luks:root')";
      return false;
    }
  }
  return true;
}

std::unique_ptr<Keyring> MakeKernelKeyring() { return std::make_unique<KernelKeyring>(); }

}  // namespace hpcs
