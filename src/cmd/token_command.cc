#include "cmd/token_command.h"

#include <unistd.h>

#include <cerrno>

#include "admin/luks_tokens.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/strutil.h"
#include "core/hpcs_token.h"
#include "core/token_open.h"

namespace hpcs {

namespace {

constexpr size_t kMaxPassphrase = 512;
constexpr int kMaxSlot = 31;  // LUKS2 has key slots 0..31
constexpr int kMaxTokenId = 31;

// A number 0..max; -1 when it is not one.
int SmallNumber(const std::string& s, int max) {
  unsigned long long n = 0;
  if (!ParseUint(s, &n) || n > static_cast<unsigned long long>(max)) return -1;
  return static_cast<int>(n);
}

}  // namespace

std::string CheckTokenMake(const Args& a) {
  std::vector<std::string> aad;
  std::string err;
  if (a.Get(kTokenLuksUuid).empty()) return "--luks-uuid UUID is required";
  if (HpcsTokenAad(a.Get(kTokenLuksUuid), &aad, &err) < 0) return "--luks-uuid: " + err;
  if (SmallNumber(a.Get(kTokenKeyslot), kMaxSlot) < 0) {
    return "--keyslot N (a key slot, 0 to " + std::to_string(kMaxSlot) + ") is required";
  }
  return "";
}

std::string CheckTokenOpen(const Args& a) {
  if (a.Get(kTokenDevice).empty()) return "--device DEVICE is required";
  if (a.Given(kTokenId) && SmallNumber(a.Get(kTokenId), kMaxTokenId) < 0) {
    return "--token-id N needs a token number, 0 to " + std::to_string(kMaxTokenId);
  }
  return "";
}

int TokenMakeCommand(Context& ctx) {
  const Args& a = ctx.args;
  Secret pass;
  std::string err;
  if (ReadAllFd(STDIN_FILENO, kMaxPassphrase + 1, &pass, &err) < 0) {
    return CommandFailed("Failed to read the passphrase from standard input: " + err);
  }
  std::string_view p = pass.view();
  if (p.empty() || p.size() > kMaxPassphrase || p.find('\n') != p.npos || p.find('\0') != p.npos) {
    return CommandFailed(
        "The passphrase on standard input must be 1 to " + std::to_string(kMaxPassphrase) +
        " bytes with no newline or NUL (give it with printf %s, or a file without a newline)");
  }
  HpcsToken t;
  int slot = SmallNumber(a.Get(kTokenKeyslot), kMaxSlot);
  if (WrapHpcsToken(*ctx.kms.client, ctx.config, ctx.crk, a.Get(kTokenLuksUuid), pass, {slot},
                    a.Get(kTokenName), &t, &err) < 0) {
    return CommandFailed("Failed to make an hpcs token for LUKS UUID " + a.Get(kTokenLuksUuid) +
                         " with root key '" + ctx.crk + "': " + err);
  }
  if (WriteAllFd(STDOUT_FILENO, FormatHpcsToken(t) + "\n", &err) < 0) {
    return CommandFailed("Failed to write to standard output: " + err);
  }
  return kExitOk;
}

int TokenOpenCommand(Context& ctx) {
  const Args& a = ctx.args;
  if (isatty(STDOUT_FILENO)) {
    return CommandFailed(
        "token open writes the passphrase to standard output, which is a terminal; pipe it "
        "into its reader: hpcs-for-luks token open --device DEV | cryptsetup open --key-file - "
        "DEV NAME");
  }
  int id = a.Given(kTokenId) ? SmallNumber(a.Get(kTokenId), kMaxTokenId) : -1;
  Secret pass;
  std::string err;
  if (OpenDeviceToken(*ctx.kms.client, ctx.config, a.Get(kTokenDevice), id, &pass, nullptr, &err) <
      0) {
    return CommandFailed("Failed to open the hpcs token: " + err);
  }
  if (WriteAllFd(STDOUT_FILENO, pass.view(), &err) < 0) {
    return CommandFailed("Failed to write to standard output: " + err);
  }
  return kExitOk;
}

}  // namespace hpcs
