// The boot unlocker's command: arguments, kernel command line, exit codes.
#ifndef HPCS_CMD_HPCS_UNLOCK_H_
#define HPCS_CMD_HPCS_UNLOCK_H_

namespace hpcs {

// Exit codes of hpcs-unlock.
inline constexpr int kUnlockOk = 0;           // every key is in the keyring (or rd.hpcs=0)
inline constexpr int kUnlockSomeFailed = 1;   // some keys failed; each is named on stderr
inline constexpr int kUnlockConfigError = 2;  // usage, configuration or API-key problem
inline constexpr int kUnlockUnreachable = 3;  // the KMS could not be reached before the deadline

int UnlockMain(int argc, char** argv);

}  // namespace hpcs

#endif  // HPCS_CMD_HPCS_UNLOCK_H_
