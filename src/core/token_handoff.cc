#include "core/token_handoff.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "base/error.h"

namespace hpcs {
namespace {

// Root may read it without possessing it (the real root's service has a
// keyring of its own); nobody may change it.
constexpr key_perm_t kTokenPerm = KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ | KEY_USR_SEARCH;

int Errno(std::string* err, const std::string& step) {
  int e = errno;
  return Fail(
      err, -e,
      step + " the handed IAM token '" + kHandoffKeyDescription + "' failed: " + strerror(e));
}

}  // namespace

int HandOffToken(const Secret& token, std::chrono::seconds ttl, key_serial_t keyring,
                 std::string* err) {
  if (ttl > kMaxHandoffTtl) ttl = kMaxHandoffTtl;
  if (ttl < std::chrono::seconds(1)) ttl = std::chrono::seconds(1);
  // Made in our process keyring, where we possess it, so that its
  // permissions and timeout can be set before anyone else can see it.
  key_serial_t id =
      add_key("user", kHandoffKeyDescription, token.data(), token.size(), KEY_SPEC_PROCESS_KEYRING);
  if (id < 0) return Errno(err, "adding");
  int r = 0;
  if (keyctl_setperm(id, kTokenPerm) < 0) {
    r = Errno(err, "setting the permissions of");
  } else if (keyctl_set_timeout(id, static_cast<unsigned>(ttl.count())) < 0) {
    r = Errno(err, "setting the timeout of");
  } else if (keyctl_link(id, keyring) < 0) {
    r = Errno(err, "linking");
  }
  if (r < 0) keyctl_revoke(id);
  keyctl_unlink(id, KEY_SPEC_PROCESS_KEYRING);
  return r;
}

namespace {

int ReadToken(key_serial_t keyring, bool take, Secret* out, std::string* err) {
  long id = keyctl_search(keyring, "user", kHandoffKeyDescription, 0);
  if (id < 0) {
    if (errno == ENOKEY || errno == EKEYEXPIRED || errno == EKEYREVOKED) {
      return Fail(err, -ENOKEY,
                  std::string("no handed IAM token '") + kHandoffKeyDescription +
                      "' in root's user keyring");
    }
    return Errno(err, "finding");
  }
  void* buf = nullptr;
  long n = keyctl_read_alloc(static_cast<key_serial_t>(id), &buf);
  int r = 0;
  if (n <= 0) {
    r = n < 0 ? Errno(err, "reading") : Fail(err, -ENOKEY, "the handed IAM token is empty");
  } else {
    *out = Secret(static_cast<const unsigned char*>(buf), static_cast<size_t>(n));
  }
  if (buf) {
    explicit_bzero(buf, static_cast<size_t>(n > 0 ? n : 0));
    free(buf);
  }
  if (!take) return r;
  // Taken once: nobody else in this boot gets it.
  keyctl_revoke(static_cast<key_serial_t>(id));
  keyctl_unlink(static_cast<key_serial_t>(id), keyring);
  return r;
}

}  // namespace

int TakeHandedToken(key_serial_t keyring, Secret* out, std::string* err) {
  return ReadToken(keyring, true, out, err);
}

int ReadHandedToken(key_serial_t keyring, Secret* out, std::string* err) {
  return ReadToken(keyring, false, out, err);
}

}  // namespace hpcs
