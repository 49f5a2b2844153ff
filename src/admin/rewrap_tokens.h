// rewrap and rewrap --to-crk for the hpcs LUKS2 tokens (core/hpcs_token.h)
// of the crypttab's volumes and of each --device: each token is unwrapped
// (bound to its volume's LUKS UUID), wrapped anew by WrapHpcsToken (which
// checks the new wrapping before anyone stores it), and only then written in
// place of the old one (`cryptsetup token import --token-replace`, one
// header write): a failure leaves the old token as it was.
#ifndef HPCS_ADMIN_REWRAP_TOKENS_H_
#define HPCS_ADMIN_REWRAP_TOKENS_H_

#include <string>
#include <vector>

#include "core/config.h"
#include "core/hpcs_token.h"
#include "kp/kp_client.h"

namespace hpcs {

struct TokenRewrapPlan {
  KpClient* from = nullptr;  // the instance of from_config
  const Config* from_config = nullptr;
  KpClient* to = nullptr;  // the instance of to_config (may be from)
  const Config* to_config = nullptr;
  // Only the tokens of this root key move (rewrap --to-crk: the current
  // one); empty: every token.
  std::string from_crk;
  // The root key to wrap with; empty: each token's own (its newest version).
  std::string to_crk;
  std::string crypttab = "/etc/crypttab";
  std::vector<std::string> devices;  // besides the crypttab's volumes
};

struct TokenRewrap {
  std::string device;
  int id = -1;
  HpcsToken old_token, new_token;
  std::string old_version;  // the key version that had wrapped it (the KMS's unwrap)
  int result = 0;           // 0: ready (or written); else -errno, *error says why
  std::string error;        // names the device and the token
  bool changed = false;     // new_token wraps with another key version or root key
  bool skipped = false;     // of another root key than from_crk: left alone
  bool written = false;     // new_token is in the header
};

// Every hpcs token of the plan's volumes (each device once), unwrapped and
// wrapped anew, nothing written. A crypttab volume that is not LUKS2 is left
// out; one whose header cannot be read is named in *unread; a --device that
// cannot be read is an outcome with its error.
void PrepareTokenRewraps(const TokenRewrapPlan& plan, std::vector<TokenRewrap>* out,
                         std::vector<std::string>* unread);

// Writes each prepared, changed token in place of its old one; a failure
// (result, error) leaves that token as it was and does not stop the others.
void WriteTokenRewraps(std::vector<TokenRewrap>* rewraps);

}  // namespace hpcs

#endif  // HPCS_ADMIN_REWRAP_TOKENS_H_
