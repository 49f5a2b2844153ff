// hpcs-unlock's helper modes for the hpcs LUKS2 token's libcryptsetup plugin
// (README.md, "The hpcs LUKS2 token"): the plugin runs
//   hpcs-unlock --token-open --luks-uuid UUID   token JSON on stdin, the
//                                               passphrase (raw) on stdout
//   hpcs-unlock --token-validate                token JSON on stdin
//   hpcs-unlock --token-dump                    token JSON on stdin, luksDump's lines out
// Errors go to stderr, one line each. --token-open never adds a key to a
// keyring and never locks the TPM.
#ifndef HPCS_CMD_TOKEN_HELPER_H_
#define HPCS_CMD_TOKEN_HELPER_H_

#include <string>

namespace hpcs {

// The helper's exit codes (sysexits.h), which the plugin turns into errnos.
inline constexpr int kTokenOk = 0;
inline constexpr int kTokenUsage = 64;     // EX_USAGE: bad arguments, stdout a terminal
inline constexpr int kTokenBadToken = 65;  // EX_DATAERR: -EINVAL
inline constexpr int kTokenNotNow = 75;    // EX_TEMPFAIL: -EAGAIN (KMS not reached, no credential)
inline constexpr int kTokenRefused = 77;   // EX_NOPERM: -ENOENT (other volume or instance, 4xx)

enum class TokenMode { kNone, kOpen, kValidate, kDump };

struct TokenHelperOptions {
  TokenMode mode = TokenMode::kNone;
  std::string luks_uuid;
  std::string config_path;
  std::string cmdline_path;
};

int TokenHelperMain(const TokenHelperOptions& o);

}  // namespace hpcs

#endif  // HPCS_CMD_TOKEN_HELPER_H_
