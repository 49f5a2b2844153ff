#include "cmd/token_helper.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "base/fileio.h"
#include "base/json.h"
#include "base/log.h"
#include "base/secret.h"
#include "cmd/boot_tpm_lock.h"
#include "cmd/command.h"
#include "core/cmdline.h"
#include "core/hpcs_token.h"
#include "core/kms.h"
#include "core/token_handoff.h"
#include "core/token_open.h"

namespace hpcs {
namespace {

constexpr size_t kMaxTokenJson = 64 * 1024;

int ReadToken(HpcsToken* t) {
  Secret in;
  std::string err;
  if (ReadAllFd(STDIN_FILENO, kMaxTokenJson, &in, &err) < 0) {
    LogError("cannot read the token from stdin: " + err);
    return kTokenBadToken;
  }
  JsonInit();
  if (ParseHpcsToken(in.view(), t, &err) < 0) {
    LogError(err);
    return kTokenBadToken;
  }
  return kTokenOk;
}

// What the plugin tells libcryptsetup, from an errno of OpenHpcsToken.
int ExitForUnwrap(int r) {
  switch (-r) {
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case EAGAIN:
      return kTokenNotNow;
    case EINVAL:
    case EBADMSG:
      return kTokenBadToken;
    default:
      return kTokenRefused;  // EXDEV: another instance; EPROTO: the KMS refused
  }
}

// The config with the kernel command line applied, as at boot.
bool LoadTokenConfig(const TokenHelperOptions& o, Config* c) {
  std::string cmdline, err;
  if (ReadRegularFile(o.cmdline_path, kMaxSmallFileSize, &cmdline, nullptr, &err) < 0) {
    LogDebug("no kernel command line: " + err);
  }
  BootOptions boot = ParseBootOptions(cmdline);
  if (boot.disabled) {
    LogError("rd.hpcs=0 on the kernel command line: the hpcs token is not used");
    return false;
  }
  if (!LoadConfigAndWarn(o.config_path, c)) return false;
  std::vector<std::string> refused;
  ApplyBootOptions(boot, c, &refused);
  for (const auto& r : refused) LogWarning("kernel command line: " + r);
  return true;
}

// A client bounded by the token timeout; in the real root after the TPM
// lock with the IAM token the initramfs handed on (left in place).
int OpenTokenKms(const Config& c, Kms* kms, std::string* err) {
  if (int r = HttpGlobalInit(err); r < 0) return r;
  KmsOptions ko;
  ko.deadline = Clock::now() + std::chrono::seconds(c.token_timeout_s);
  ko.retry.max_retries = -1;
  ko.retry.cap = std::chrono::seconds(1);
  ko.tpm_device_wait = std::chrono::seconds(1);
  ko.wait_for_tcsd = true;
  Secret token;
  if (ReadTokenAfterTheLock(c, &token)) {
    return OpenKmsWithToken(c, ko, token, Clock::now() + kMaxHandoffTtl,
                            "the TPM is locked for this boot and the IAM token the initramfs "
                            "handed on was refused",
                            kms, err);
  }
  return OpenKms(c, ko, kms, err);
}

int Open(const TokenHelperOptions& o) {
  if (isatty(STDOUT_FILENO)) {
    LogError("--token-open writes the passphrase to stdout, which is a terminal: refused");
    return kTokenUsage;
  }
  HpcsToken t;
  if (int rc = ReadToken(&t); rc != kTokenOk) return rc;
  const std::string where =
      "hpcs token of LUKS2 volume " + o.luks_uuid + ": root key '" + t.crk + "'";
  Config c;
  if (!LoadTokenConfig(o, &c)) return kTokenRefused;
  Kms kms;
  std::string err;
  if (OpenTokenKms(c, &kms, &err) < 0) {
    LogError(where + " at " + c.endpoint_url + ": " + err);
    // With api_key = TPM, the TPM may not be there yet or locked: not now.
    return c.api_key_from_tpm ? kTokenNotNow : kTokenRefused;
  }
  Secret pass;
  std::string version;
  if (int r = OpenHpcsToken(*kms.client, c, t, o.luks_uuid, &pass, &version, &err); r < 0) {
    LogError(where + " at " + c.endpoint_url + ": " + err);
    return ExitForUnwrap(r);
  }
  LogDebug(where + ": unwrapped (root key version '" + version + "')");
  // In the initramfs with api_key = TPM: the real root, where the TPM is
  // locked, gets this IAM token for its own _netdev volumes' tokens, as it
  // would from hpcs-unlock.service had that unwrapped anything.
  HandOnToken(c, kms);
  if (WriteAllFd(STDOUT_FILENO, pass.view(), &err) < 0) {
    LogError(where + ": cannot write the passphrase to stdout: " + err);
    return kTokenRefused;
  }
  return kTokenOk;
}

}  // namespace

int TokenHelperMain(const TokenHelperOptions& o) {
  HpcsToken t;
  switch (o.mode) {
    case TokenMode::kOpen:
      return Open(o);
    case TokenMode::kValidate:
      return ReadToken(&t);
    case TokenMode::kDump: {
      if (int rc = ReadToken(&t); rc != kTokenOk) return rc;
      std::string out;
      for (const std::string& line : DescribeHpcsToken(t)) out += line + "\n";
      std::string err;
      if (WriteAllFd(STDOUT_FILENO, out, &err) < 0) LogError(err);
      return kTokenOk;
    }
    case TokenMode::kNone:
      break;
  }
  return kTokenUsage;
}

}  // namespace hpcs
